"""``mypy --strict`` on rxfeed's public API and on the templates a plugin
author copies, and generic interfaces: ``RxBackend[MyConfig]`` gives
``self.config`` its plugin's type."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


ROOT = Path(__file__).resolve().parents[1]
PUBLIC = ["__init__.py", "interfaces.py", "backend_base.py", "config.py", "plugins.py", "registry.py", "hookspecs.py",
          "pipeline.py", "summary.py", "ffi.py", "sources.py", "event_books.py", "events.py", "remote.py"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """The installed package's shape as links to the sources (what a plugin
    author gets from ``python -m rxfeed.tools.typetree DIR``): the editable
    install's import hook is invisible to mypy."""
    from rxfeed.tools.typetree import make_tree

    top = make_tree(tmp_path_factory.mktemp("typed"))
    shutil.copy(ROOT / "pyproject.toml", top / "pyproject.toml")
    return top


def _mypy(top: Path, *paths: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", *paths],
                          cwd=top, capture_output=True, text=True)


def test_public_api_and_templates_are_strictly_typed(tree):
    out = _mypy(tree, *(f"rxfeed/{f}" for f in PUBLIC), "rxfeed/backends/_template", "rxfeed/protocols/_template")
    assert out.returncode == 0, out.stdout + out.stderr


def test_plugin_config_is_typed_through_the_generic_interface(tree):
    (tree / "myplugin.py").write_text(textwrap.dedent('''
        from rxfeed.config import PluginConfig
        from rxfeed.interfaces import RxBackend


        class MyConfig(PluginConfig):
            path: str
            burst: int = 8


        class MyBackend(RxBackend[MyConfig]):
            name = "mine"
            Config = MyConfig

            def read_burst(self, max_packets: int) -> list[bytes] | None:
                return [self.config.path.encode()] * min(max_packets, self.config.burst)

            def wrong(self) -> int:
                return self.config.brust
    '''))
    out = _mypy(tree, "myplugin.py")
    errors = [line for line in out.stdout.splitlines() if ": error:" in line]
    assert len([e for e in errors if '"MyConfig" has no attribute "brust"' in e]) == 1, out.stdout
    assert all(e.startswith("myplugin.py:19:") for e in errors), out.stdout  # the good method is clean
