"""rxfeed builds as a wheel that works on its own: every module, header and
entry point is in it (not only in the editable install the tests use)."""

from __future__ import annotations

import json
import site
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_installs_and_replays(tmp_path, day_dir):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps", "-w",
                    str(tmp_path / "wh"), str(ROOT)], check=True)
    (whl,) = (tmp_path / "wh").glob("rxfeed-*.whl")
    names = zipfile.ZipFile(whl).namelist()
    for needed in ("rxfeed/include/rxfeed/abi.h", "rxfeed/rxfeed_abi.pxd", "rxfeed/backends/_template/backend.py",
                   "rxfeed/protocols/itch50/itch50_handlers.h"):
        assert needed in names
    target = tmp_path / "site"
    zipfile.ZipFile(whl).extractall(target)
    # -S: no .pth files, so the editable install's import hook is not active;
    # the dependencies come from this environment's site-packages.
    env = {"PYTHONPATH": ":".join([str(target)] + site.getsitepackages()), "PATH": "/usr/bin:/bin"}
    code = ("import sys, json; from rxfeed.tools.cli import main; import rxfeed; "
            "assert rxfeed.__file__.startswith(sys.argv[1]), rxfeed.__file__; "
            "sys.argv = ['rxfeed', 'replay', sys.argv[2], '--json']; main()")
    out = subprocess.run([sys.executable, "-S", "-c", code, str(target), str(day_dir / "day.pcap")],
                         env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["messages"] == 20_000
