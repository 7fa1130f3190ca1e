"""Buffer lifetime (docs/plugin-abi.md): a packet's bytes are the decoder's
only for its burst. Python decoders lose their views after the call (and a
kept slice or array stops the run); poison mode (``RXFEED_POISON_RELEASED``)
hands native decoders copies that are overwritten once the burst is over;
the conformance kit catches plugins that break the rule."""

from __future__ import annotations

import ctypes
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from rxfeed import Packet, Pipeline, PluginConfig, PythonDecoder, ProtocolDecoder, ffi as rxffi
from rxfeed import _runloop
from rxfeed.tools.conformance import DecoderConformance, poisoned
from rxfeed.tools.generator import udp_frame, write_pcap

from .test_cffi_plugins import BACKEND_C, TestCffiBackendConformance, _build, _KitBackend

POISON = bytes([_runloop.POISON_BYTE])


def _payloads(n: int = 40) -> list[bytes]:
    """Datagrams with runs of repeats (every third one equals the one before)."""
    out: list[bytes] = []
    for i in range(n):
        out.append(out[-1] if i % 3 == 2 else struct.pack(">I", i) + bytes(range(i % 50)))
    return out


def _pcap(tmp_path: Path, payloads: list[bytes]) -> str:
    path = tmp_path / "src.pcap"
    write_pcap(path, [(i * 1000, udp_frame(p)) for i, p in enumerate(payloads)], nsec=True)
    return str(path)


class _Keeper(PythonDecoder[PluginConfig]):
    """Keeps, of every packet, what ``keep(packet)`` returns."""

    name, Config = "keeper", PluginConfig

    def __init__(self, keep: Any = lambda p: p) -> None:
        super().__init__(PluginConfig())
        self.keep = keep
        self.kept: list[Any] = []

    def on_packets(self, packets: Sequence[Packet]) -> bool:
        self.kept.extend(self.keep(p) for p in packets)
        return False

    def counters(self) -> dict[str, Any]:
        return {"messages": len(self.kept), "messages_per_type": {"datagram": len(self.kept)}}


# --- Python decoders -----------------------------------------------------------

def test_a_kept_packet_view_raises_once_the_call_is_over(tmp_path):
    dec = _Keeper()
    s = Pipeline("pcap_replay", dec, backend_config={"path": _pcap(tmp_path, _payloads())}).run()
    assert s.stop_reason == "end_of_source" and len(dec.kept) == 40
    for p in dec.kept:
        with pytest.raises(ValueError, match="released"):
            bytes(p.data)


@pytest.mark.parametrize("keep", ["slice", "cast", "memoryview", "numpy"])
def test_a_kept_slice_or_array_of_packet_data_stops_the_run(tmp_path, keep):
    """A slice, cast or array of ``Packet.data`` survives the view's release and
    would read the backend's buffer after it was given back: the run stops
    with ``decoder_error`` after the first burst, naming the rule."""
    import numpy as np

    how = {"slice": lambda p: p.data[4:], "cast": lambda p: p.data.cast("B"),
           "memoryview": lambda p: memoryview(p.data), "numpy": lambda p: np.frombuffer(p.data, np.uint8)}[keep]
    dec = _Keeper(how)
    s = Pipeline("pcap_replay", dec, backend_config={"path": _pcap(tmp_path, _payloads())}, run={"burst": 8}).run()
    assert s.stop_reason == "decoder_error" and len(dec.kept) == 8
    assert "still holds the bytes of 8 packet(s)" in s.error and "bytes(p.data)" in s.error


def test_a_decoder_that_copies_what_it_keeps_runs_to_the_end(tmp_path):
    payloads = _payloads()
    dec = _Keeper(lambda p: bytes(p.data[4:]))
    s = Pipeline("pcap_replay", dec, backend_config={"path": _pcap(tmp_path, payloads)}, run={"burst": 8}).run()
    assert s.stop_reason == "end_of_source" and dec.kept == [p[4:] for p in payloads]


class _AddressKeeper(PythonDecoder[PluginConfig]):
    """Notes where each packet's bytes are (dropping the array at once) and,
    in the next burst, reads what is there now."""

    name, Config = "address_keeper", PluginConfig

    def __init__(self) -> None:
        super().__init__(PluginConfig())
        self.last: list[tuple[int, int]] = []
        self.seen_later: list[bytes] = []

    def on_packets(self, packets: Sequence[Packet]) -> bool:
        import numpy as np

        self.seen_later += [ctypes.string_at(a, n) for a, n in self.last]
        self.last = [(np.frombuffer(p.data, np.uint8).ctypes.data, len(p.data)) for p in packets]
        return False

    def counters(self) -> dict[str, Any]:
        return {}


def test_poison_mode_poisons_what_a_python_decoder_was_handed(tmp_path, monkeypatch):
    monkeypatch.setenv(_runloop.POISON_ENV, "1")
    dec = _AddressKeeper()
    s = Pipeline("pcap_replay", dec, backend_config={"path": _pcap(tmp_path, _payloads())}, run={"burst": 4}).run()
    assert s.stop_reason == "end_of_source" and len(dec.seen_later) == 36
    assert all(b == POISON * len(b) for b in dec.seen_later)


@pytest.mark.parametrize("value, on", [("1", True), ("yes", True), ("on", True), ("0", False), ("", False),
                                       ("no", False)])
def test_the_environment_variable_turns_poison_mode_on(monkeypatch, value, on):
    monkeypatch.setenv(_runloop.POISON_ENV, value)
    assert _runloop.poison_wanted() is on
    assert _runloop.poison_wanted(False) is False and _runloop.poison_wanted(True) is True


# --- native decoders (cffi) ------------------------------------------------------

REPEATS_C = r"""
#include <string.h>
#include "rxfeed/abi.h"

/* Counts datagrams equal to the one before. KEEP_POINTER: remembers the
   previous datagram by pointer (the bug: the pointer outlives its burst);
   otherwise copies it. */
typedef struct { const uint8_t *prev; uint32_t prev_len; uint8_t copy[2048];
                 uint64_t packets, repeats, empty; } repeats;

static int rp_burst(void *ctx, const rxf_packet *pkts, uint32_t n) {
    repeats *r = ctx;
    for (uint32_t i = 0; i < n; i++) {
        const rxf_packet *p = &pkts[i];
        if (p->len == 0) { r->empty++; continue; }  /* not a datagram of this protocol: counted */
        r->packets++;
        if (r->prev && p->len == r->prev_len && memcmp(p->data, r->prev, p->len) == 0) r->repeats++;
        r->prev_len = p->len;
#ifdef KEEP_POINTER
        r->prev = p->data;
#else
        if (p->len > sizeof r->copy) { r->prev = NULL; continue; }
        memcpy(r->copy, p->data, p->len);
        r->prev = r->copy;
#endif
    }
    return 0;
}

void repeats_init(repeats *r, rxf_decoder_ops *ops) {
    memset(r, 0, sizeof *r);
    *ops = (rxf_decoder_ops){.abi_version = RXF_ABI_VERSION, .struct_size = sizeof *ops, .ctx = r,
                             .on_burst = rp_burst};
}
"""

REPEATS_CDEF = """
typedef struct { uint64_t packets, repeats, empty; ...; } repeats;
void repeats_init(repeats *r, rxf_decoder_ops *ops);
"""

_MODULES: dict[bool, Any] = {}


def _repeats_module(keep_pointer: bool) -> Any:
    if keep_pointer not in _MODULES:
        import tempfile

        class _Dirs:
            def mktemp(self, n: str) -> Path:
                return Path(tempfile.mkdtemp(prefix=n))

        name = "_rxf_repeats_" + ("pointer" if keep_pointer else "copy")
        source = ("#define KEEP_POINTER 1\n" if keep_pointer else "") + REPEATS_C
        _MODULES[keep_pointer] = _build(_Dirs(), name, rxffi.ABI_CDEF + REPEATS_CDEF, source, rxffi.build_args())
    return _MODULES[keep_pointer]


class _Repeats(ProtocolDecoder[PluginConfig]):
    """A C decoder (cffi) counting repeated datagrams; ``keep_pointer`` is the bug."""

    name, Config = "repeats", PluginConfig
    keep_pointer = False

    def __init__(self, config: PluginConfig | None = None) -> None:
        super().__init__(config or PluginConfig())
        mod = _repeats_module(self.keep_pointer)
        self.ffi = mod.ffi
        self.state, self.ops = mod.ffi.new("repeats *"), mod.ffi.new("rxf_decoder_ops *")
        mod.lib.repeats_init(self.state, self.ops)

    def decoder_capsule(self) -> Any:
        return rxffi.decoder_capsule(self.ffi, self.ops)

    def counters(self) -> dict[str, Any]:
        n = int(self.state.packets)
        empty = int(self.state.empty)
        return {"messages": n, "messages_per_type": {"datagram": n}, "repeats": int(self.state.repeats),
                "errors": {"empty_datagram": empty} if empty else {}}


class _RepeatsKeepingPointers(_Repeats):
    keep_pointer = True


@pytest.mark.parametrize("cls, changes", [(_Repeats, False), (_RepeatsKeepingPointers, True)])
def test_poison_mode_changes_only_what_a_decoder_keeping_pointers_counts(tmp_path, monkeypatch, cls, changes):
    """Through the native loop (pcap_replay), burst 1: without poison both
    decoders count the 13 repeats (the replay's buffer still holds the old
    bytes); with ``RXFEED_POISON_RELEASED=1`` the one keeping a pointer to
    the previous datagram reads poison and finds none."""
    payloads = _payloads()
    config = {"path": _pcap(tmp_path, payloads)}
    counts = {}
    for value in ("0", "1"):
        monkeypatch.setenv(_runloop.POISON_ENV, value)
        dec = cls()
        s = Pipeline("pcap_replay", dec, backend_config=config, run={"burst": 1}).run()
        assert s.stop_reason == "end_of_source" and s.messages == 40
        counts[value] = dec.counters()["repeats"]
    assert counts["0"] == 13
    assert counts["1"] == (0 if changes else 13)


class _RepeatsKit(DecoderConformance):
    decoder: type[Any] = _Repeats

    def valid_payloads(self) -> tuple[list[bytes], int]:
        return _payloads(), 40


class TestRepeatsDecoderPassesTheKit(_RepeatsKit):
    """The copying decoder passes the whole decoder suite."""


def test_the_kit_catches_a_c_decoder_keeping_a_pointer_to_the_previous_packet(tmp_path):
    class Kit(_RepeatsKit):
        decoder = _RepeatsKeepingPointers

    with pytest.raises(AssertionError, match="read packet bytes after their burst was released"):
        Kit().test_released_buffers_poisoned_change_nothing(tmp_path, 1)


def test_the_kit_catches_a_python_decoder_keeping_slices(tmp_path):
    class Slicer(_Keeper):
        def __init__(self, config: PluginConfig | None = None) -> None:
            super().__init__(lambda p: p.data[1:])

    class Kit(DecoderConformance):
        decoder = Slicer

        def valid_payloads(self) -> tuple[list[bytes], int]:
            return _payloads(), 40

    Kit().test_counts_every_message_of_valid_input()  # the ordinary checks do not see it
    with pytest.raises(AssertionError, match="still holds the bytes"):
        Kit().test_released_buffers_poisoned_change_nothing(tmp_path, 32)


# --- backends --------------------------------------------------------------------

ONE_BUFFER_C = BACKEND_C.replace(
    "typedef struct {", "static uint8_t rx_scratch[65536];\ntypedef struct {", 1).replace(
    "pkts[n].data = r->buf + r->pos + 4;",
    "if (plen > sizeof rx_scratch) { strcpy(r->error, \"too long\"); return n ? (int)n : RXF_ERROR; }\n"
    "        memcpy(rx_scratch, r->buf + r->pos + 4, plen);\n"
    "        pkts[n].data = rx_scratch;")


def test_the_kit_catches_a_backend_handing_out_one_buffer_for_a_whole_burst(tmp_path):
    """Every record read into one scratch buffer: right with bursts of one,
    wrong as soon as two packets are out at once."""
    assert ONE_BUFFER_C != BACKEND_C

    class OneBuffer(_KitBackend):
        module_name, source = "_rxf_cffi_backend_one_buffer", ONE_BUFFER_C

    class Kit(TestCffiBackendConformance):
        backend = OneBuffer

    Kit().test_every_burst_is_released_once_and_nothing_follows_the_end(tmp_path, 1)
    with pytest.raises(AssertionError, match="share bytes"):
        Kit().test_every_burst_is_released_once_and_nothing_follows_the_end(tmp_path, 32)


def test_poison_mode_in_a_python_backend_to_native_decoder_run(monkeypatch):
    """run_python (a Python backend into a C decoder) poisons too."""
    from rxfeed.tools.conformance import _ListBackend

    payloads = _payloads()
    got = {}
    for on in (False, True):
        dec = _RepeatsKeepingPointers()
        with poisoned(on):
            s = Pipeline(_ListBackend(payloads, False), dec, run={"burst": 1}).run()
        assert s.stop_reason == "end_of_source"
        got[on] = dec.counters()["repeats"]
    assert got == {False: 13, True: 0}
