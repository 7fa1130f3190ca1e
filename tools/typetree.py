"""A directory mypy can read rxfeed from, for type-checking a plugin against
an *editable* install of rxfeed (meson-python's editable install imports
rxfeed through a hook that mypy cannot follow)::

    python -m rxfeed.tools.typetree .rxfeed-types
    MYPYPATH=.rxfeed-types mypy --strict my_plugin/

The directory holds ``rxfeed/`` with the shape of the installed package
(symbolic links to the sources); nothing is copied, so it stays current.
Against a regular install of rxfeed, mypy needs none of this.
"""

from __future__ import annotations

import sys
from pathlib import Path

import rxfeed

#: source directory -> subpackage of ``rxfeed`` (the editable checkout's layout)
_SUBPACKAGES = ("backends", "protocols", "sinks", "tools")


def make_tree(dest: Path) -> Path:
    """Write ``dest/rxfeed`` (links) and return ``dest``."""
    core = Path(rxfeed.__file__).resolve().parent
    pkg = dest / "rxfeed"
    pkg.mkdir(parents=True, exist_ok=True)
    if not (core.parent / "core").is_dir() or core.name != "core":  # a regular install: link the package
        pkg.rmdir()
        pkg.symlink_to(core, target_is_directory=True)
        return dest
    root = core.parent
    for f in (*core.glob("*.py"), *core.glob("*.pyi"), core / "py.typed"):
        link = pkg / f.name
        if not link.exists():
            link.symlink_to(f)
    for f in (root / "tools" / "top_level").glob("*.py"):  # installed at the top (rxfeed.testing, rxfeed.remote)
        link = pkg / f.name
        if not link.exists():
            link.symlink_to(f)
    for sub in _SUBPACKAGES:
        link = pkg / sub
        if not link.exists():
            link.symlink_to(root / sub, target_is_directory=True)
    return dest


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m rxfeed.tools.typetree DIR", file=sys.stderr)
        return 2
    print(make_tree(Path(args[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
