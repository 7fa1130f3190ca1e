"""The framework (``core/``, installed as ``rxfeed``) imports no protocol,
backend, output or tool: those are plugins and tools built on its public API."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = ("rxfeed.protocols", "rxfeed.backends", "rxfeed.sinks", "rxfeed.tools")


def _imports(path: Path) -> list[str]:
    if path.suffix == ".py":
        names = []
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.append(("rxfeed." if node.level else "") + node.module)
        return names
    # Cython: plain regex over import / cimport lines is enough here
    return re.findall(r"^\s*(?:from|import|cimport)\s+([\w.]+)", path.read_text(), re.M)


def test_core_imports_no_protocol_backend_or_tool():
    offenders = [f"{p.relative_to(ROOT)}: {name}"
                 for p in sorted(ROOT.glob("core/**/*")) if p.suffix in (".py", ".pyx", ".pxd")
                 for name in _imports(p) if name.startswith(FORBIDDEN)]
    assert offenders == []


def test_core_headers_include_no_protocol():
    offenders = [str(p.relative_to(ROOT)) for p in ROOT.glob("core/**/*.[ch]")
                 if re.search(r'#include\s+"(?!rxfeed/)[^"]*itch', p.read_text())]
    assert offenders == []


def test_nothing_in_core_names_a_protocol():
    # the framework knows no venue: ITCH, MoldUDP64 and IEX live in protocols/ (DESIGN.md)
    pattern = re.compile(r"\bitch|moldudp|\bmold\b|\bnasdaq|\biex", re.I)
    offenders = [f"{p.relative_to(ROOT)}:{n}: {line.strip()}"
                 for p in sorted(ROOT.glob("core/**/*")) if p.is_file() and "__pycache__" not in p.parts
                 for n, line in enumerate(p.read_text(errors="replace").splitlines(), 1) if pattern.search(line)]
    assert offenders == []
