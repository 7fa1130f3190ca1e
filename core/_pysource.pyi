"""Type stub of the Python-backend table adapter (core/_pysource.pyx)."""

from typing import Any

MAX_BURST: int

class PythonSource:
    def __init__(self, backend: Any) -> None: ...
    def capsule(self) -> Any: ...

def backend_table_of(backend: Any) -> tuple[Any, tuple[Any, PythonSource | None]]: ...
