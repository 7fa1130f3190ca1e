"""rxfeed.backend_base.WrapperBackend: what the faults and record backends
share, and what a third wrapper gets from it in a few lines - the inner
backend opened by name or given, its C table (a pure-Python backend's made
over its ``read_burst``), its stats merged, its closing - and the same
clear configuration errors for every wrapper."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from rxfeed import Pipeline, RxBackend, get_plugins
from rxfeed.backend_base import WrapperBackend, WrapperConfig
from rxfeed.config import ConfigError, validate

from .conftest import ListBackend


class PassConfig(WrapperConfig):
    """Nothing of its own."""


class Passthrough(WrapperBackend[PassConfig]):
    """The third wrapper: the inner backend's table as is, one counter of its own."""

    name, Config = "passthrough", PassConfig

    def wrapper_stats(self) -> dict[str, Any]:
        return {"passthrough": {"wrapped": True}, "warnings": ["passthrough: nothing changed"]}


class Refusing(Passthrough):
    """A wrapper whose own part fails to open."""

    name = "refusing"

    def open_wrapper(self, config: PassConfig) -> None:
        raise ConfigError("refusing: no")


class Closes(ListBackend):
    """A Python backend that notes its closing."""

    def __init__(self, payloads: list[bytes]) -> None:
        super().__init__(payloads)
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def pcap(path: Path) -> RxBackend[Any]:
    cls = get_plugins().backends.get("pcap_replay")
    return cls(cls.Config(path=str(path)))


def counts(backend: RxBackend[Any]) -> tuple[Any, ...]:
    with Pipeline(backend, "itch50") as pipe:
        s = pipe.run()
    assert s.stop_reason == "end_of_source", s.error
    return s.packets, s.messages, s.messages_per_type, s.gaps, s.duplicates, s.errors, s.source


def test_a_pass_through_wrapper_gives_the_unwrapped_counts(day_dir):
    day = day_dir / "day.pcap"
    plain = counts(pcap(day))
    assert plain[1] == 20_000
    assert counts(Passthrough.wrap(pcap(day))) == plain
    by_name = Passthrough(validate(PassConfig, {"backend": "pcap_replay", "backend_config": {"path": str(day)}},
                                   "backend.passthrough"))
    assert counts(by_name) == plain


def test_it_reads_like_its_inner_backend_and_merges_its_stats(day_dir):
    inner = pcap(day_dir / "day.pcap")
    with Passthrough.wrap(inner) as w:
        assert (w.stream, w.source, w.native_capsule() is not None) == (inner.stream, str(day_dir / "day.pcap"), True)
        with Pipeline(w, "itch50") as pipe:
            s = pipe.run()
        assert w.progress() == inner.progress()
        stats = w.stats()
    assert {k: v for k, v in stats.items() if k not in ("inner_backend", "passthrough", "warnings")} == inner.stats()
    assert stats["inner_backend"] == "pcap_replay" and stats["passthrough"] == {"wrapped": True}
    assert s.backend_stats["passthrough"] == {"wrapped": True} and "passthrough: nothing changed" in s.warnings


def test_a_python_inner_backend_is_read_through_a_c_table(day_dir):
    """The pass-through hands the run loop a table over the Python backend's
    read_burst (rxfeed._pysource): the same packets as the Python path."""
    import struct

    from .conftest import mold

    payloads = [mold(1 + i, [struct.pack(">cHH6s", b"S", 0, 0, b"\0" * 6) + b"O"]) for i in range(300)]
    plain = counts(ListBackend(payloads))
    inner = Closes(payloads)
    assert counts(Passthrough.wrap(inner)) == plain and plain[:2] == (300, 300)
    assert inner.closed == 1


def test_a_failing_wrapper_closes_its_inner_backend():
    inner = Closes([b"x"])
    with pytest.raises(ConfigError, match="refusing: no"):
        Refusing.wrap(inner)
    assert inner.closed == 1


def test_wrap_takes_a_config_a_dict_or_settings():
    inner = ListBackend([])
    assert Passthrough.wrap(inner, PassConfig()).inner is inner
    with pytest.raises(ConfigError, match="passthrough.nope"):
        Passthrough.wrap(inner, {"nope": 1})


WRAPPERS = [("faults", {}), ("record", {"dir": "unused"}), ("passthrough", {})]


def wrapper_class(name: str) -> type[WrapperBackend[Any]]:
    return Passthrough if name == "passthrough" else get_plugins().backends.get(name)


@pytest.mark.parametrize("name, own", WRAPPERS)
@pytest.mark.parametrize("inner, error", [
    ({}, r"^backend\.{name}\.backend: name the backend to wrap \(or use \w+\.wrap\)$"),
    ({"backend": "{name}"}, r"^backend\.{name}\.backend: {name} cannot wrap itself by name \(use \w+\.wrap\)$"),
    ({"backend": "no_such"}, r"^backend\.{name}\.backend: no backend named 'no_such' \(known: .*pcap_replay"),
    ({"backend": "pcap_replay", "backend_config": {"nope": 1}}, r"backend\.pcap_replay"),
])
def test_every_wrapper_gives_the_same_clear_config_errors(name, own, inner, error, tmp_path):
    cls = wrapper_class(name)
    settings = {**own, **{k: v.format(name=name) if isinstance(v, str) else v for k, v in inner.items()}}
    if "dir" in settings:
        settings["dir"] = str(tmp_path / "rec")
    with pytest.raises(ConfigError, match=error.format(name=name)):
        cls(validate(cls.Config, settings, f"backend.{name}"))
    assert not (tmp_path / "rec").exists()  # refused before anything was made


@pytest.mark.parametrize("name, option", [("faults", "--faults SPEC"), ("record", "--record DIR"),
                                          ("passthrough", None)])
def test_replay_by_name_needs_the_inner_backend(name, option, day_dir):
    cls = wrapper_class(name)
    with pytest.raises(ConfigError, match=f"^backend {name}: name the backend to wrap, e.g. -o backend=pcap_replay") \
            as err:
        cls.config_for_source("day.pcap", {})
    assert (option in str(err.value)) if option else "(or use" not in str(err.value)
    with pytest.raises(ConfigError, match=f"^backend.{name}.backend: no backend named 'nope'"):
        cls.config_for_source("day.pcap", {"backend": "nope"})
    got = cls.config_for_source("day.pcap", {"backend": "pcap_replay", "backend_config": {"speed": 2}})
    assert got == {"backend": "pcap_replay", "backend_config": {"path": "day.pcap", "speed": 2}}


def test_neither_wrapper_imports_the_other():
    """faults and record share core's base and table adapter, not each other's privates."""
    root = Path(__file__).resolve().parents[1] / "backends"
    for name, other in (("faults", "record"), ("record", "faults")):
        imports = [m for f in (root / name).iterdir() if f.suffix in (".py", ".pyx", ".pxd")
                   for m in re.findall(r"^\s*(?:from|import|cimport)\s+([\w.]+)", f.read_text(), re.M)]
        assert imports and not [m for m in imports if m.startswith(f"rxfeed.backends.{other}")]
    assert "cdef class PythonSource" not in (root / "faults" / "_faults.pyx").read_text()
