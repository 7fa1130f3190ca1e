"""Conformance suites a plugin runs against itself with one class.

A backend author subclasses :class:`BackendConformance`, a decoder author
:class:`DecoderConformance`, in a test module named like ``Test...``; pytest
collects the inherited tests::

    from rxfeed.testing import BackendConformance   # the kit's public name

    class TestMyBackend(BackendConformance):
        backend = "my_backend"                    # registry name (or a class)

        def source_config(self, tmp_path, payloads):
            path = tmp_path / "src.bin"
            write_my_format(path, payloads)       # a source that yields exactly these payloads
            return {"path": str(path)}

A backend with a C table subclasses :class:`NativeBackendConformance`
instead (adds the ABI checks); one that can replay its source also
:class:`ReplayAgainConformance`; a decoder with a C table,
:class:`NativeDecoderConformance` (ABI refusal, stopping with an error). Every first-party backend and decoder passes these in rxfeed's own suite
(``tests/test_conformance.py``). What is checked is listed on each test.

Without a test file: ``pytest --rxfeed-conformance NAME`` builds these
classes for the installed plugin ``NAME`` from the ``conformance_*`` hooks
of its class (:func:`conformance_classes`, :func:`backend_kit`,
:func:`decoder_kit`). Buffer lifetime is checked in poison mode
(:func:`poisoned`; docs/plugin-abi.md).
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from rxfeed import Packet, Pipeline, PluginConfig, PythonDecoder, RxBackend, get_plugins
from rxfeed import _runloop
from rxfeed.config import ConfigError

#: What a clear refusal of bad input looks like (anything else is a bug).
CLEAR_ERRORS = (ConfigError, ValueError, OSError, RuntimeError)
#: How a decoder may end a run of good input.
GOOD_ENDS = ("end_of_source", "decoder_stopped", "end_of_session")


@contextlib.contextmanager
def poisoned(on: bool = True) -> Iterator[None]:
    """Runs started inside poison released buffers (``on``) or do not,
    whatever ``RXFEED_POISON_RELEASED`` says outside; it is put back after."""
    old = os.environ.get(_runloop.POISON_ENV)
    os.environ[_runloop.POISON_ENV] = "1" if on else "0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(_runloop.POISON_ENV, None)
        else:
            os.environ[_runloop.POISON_ENV] = old


class _Recorder(PythonDecoder[PluginConfig]):
    """Keeps a copy of every packet it is given."""

    name = "conformance_recorder"
    Config = PluginConfig

    def __init__(self) -> None:
        super().__init__(PluginConfig())
        self.packets: list[Packet] = []
        self.ends = 0

    def on_packets(self, packets: Sequence[Packet]) -> bool:
        self.packets.extend(p._replace(data=bytes(p.data)) for p in packets)
        return False

    def on_end(self) -> None:
        self.ends += 1

    def counters(self) -> dict[str, Any]:
        return {"packets": len(self.packets)}


class _BackendOps(ctypes.Structure):
    _fields_ = [("abi_version", ctypes.c_uint32), ("struct_size", ctypes.c_uint32), ("ctx", ctypes.c_void_p),
                ("rx_burst", ctypes.c_void_p), ("release", ctypes.c_void_p), ("last_error", ctypes.c_void_p)]


_capsule_get = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_get.restype, _capsule_get.argtypes = ctypes.c_void_p, [ctypes.py_object, ctypes.c_char_p]
_capsule_new = ctypes.pythonapi.PyCapsule_New
_capsule_new.restype, _capsule_new.argtypes = ctypes.py_object, [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p]
_BACKEND_NAME = b"rxfeed.backend_ops.v1"


class BackendConformance:
    """Inherited tests for an :class:`~rxfeed.RxBackend` plugin.

    Set :attr:`backend`; implement :meth:`source_config`; optionally
    :meth:`corrupt_configs` (bad sources that must be refused clearly or
    counted, never crash). A backend with a C table also inherits
    :class:`NativeBackendConformance`; one that can replay its source,
    :class:`ReplayAgainConformance`.
    """

    #: registry name or RxBackend subclass
    backend: str | type[RxBackend[Any]]
    #: True for a byte-stream backend: what counts is the bytes, not where
    #: one delivery ends (``PKT_STREAM`` set on every packet)
    stream: bool = False

    def source_config(self, tmp_path: Path, payloads: list[bytes]) -> dict[str, Any]:
        """Config of a source that delivers exactly ``payloads``, in order."""
        raise NotImplementedError

    def corrupt_configs(self, tmp_path: Path) -> list[dict[str, Any]]:
        """Configs of broken sources (corrupt, truncated, missing). By default,
        for a backend whose :meth:`source_config` has a ``path``: that path
        missing, and a file of random bytes. Any other backend must override
        this (hook ``conformance_corrupt``): the check never passes empty."""
        (tmp_path / "good").mkdir(parents=True, exist_ok=True)
        base = self.source_config(tmp_path / "good", self.payloads(3))
        if "path" not in base:
            pytest.fail(f"{self._class().__qualname__}: no broken sources to check - a backend whose source "
                        f"has no `path` must give corrupt_configs() (hook conformance_corrupt(tmp_path) -> "
                        f"[config]; docs/writing-a-plugin.md, 'Conformance kit')", pytrace=False)
        noise = tmp_path / "random.bin"
        noise.write_bytes(random.Random(5).randbytes(4096))
        return [{**base, "path": str(tmp_path / "missing" / "no_such_source")}, {**base, "path": str(noise)}]

    def source_opened(self, backend: RxBackend[Any]) -> None:
        """Called after each open of a :meth:`source_config` config, before the
        run: a live backend (a socket, a NIC) sends its payloads here, once
        it is listening; it ends its source with an idle timeout."""

    # --- helpers ------------------------------------------------------------
    def _class(self) -> type[RxBackend[Any]]:
        return get_plugins().backends.get(self.backend) if isinstance(self.backend, str) else self.backend

    def _open(self, config: dict[str, Any]) -> RxBackend[Any]:
        cls = self._class()
        backend = cls(cls.Config.model_validate(config))
        try:
            self.source_opened(backend)
        except BaseException:
            backend.close()
            raise
        return backend

    def payloads(self, n: int = 300, seed: int = 1) -> list[bytes]:
        """Distinct payloads of varied sizes (4..1400 bytes), each naming its
        index. Override for a backend that only passes on well-formed data
        (e.g. a framing byte-stream backend)."""
        rng = random.Random(seed)
        return [i.to_bytes(4, "big") + rng.randbytes(rng.randrange(0, 1396)) for i in range(n)]

    def _run(self, backend: RxBackend[Any], burst: int = 32) -> tuple[Any, _Recorder]:
        rec = _Recorder()
        summary = Pipeline(backend, rec, run={"burst": burst}).run()
        return summary, rec

    # --- the suite ------------------------------------------------------------
    def test_delivers_every_payload_in_order_then_ends(self, tmp_path: Path) -> None:
        """Every payload, byte for byte, in order; then end of source."""
        payloads = self.payloads()
        with self._open(self.source_config(tmp_path, payloads)) as backend:
            summary, rec = self._run(backend)
        assert summary.stop_reason == "end_of_source", summary.error
        self._assert_delivered(rec, payloads)
        assert rec.ends == 1

    def _assert_delivered(self, rec: _Recorder, payloads: list[bytes]) -> None:
        if self.stream:
            assert b"".join(p.data for p in rec.packets) == b"".join(payloads)
            assert all(p.flags & 0x1 for p in rec.packets)
        else:
            assert [p.data for p in rec.packets] == payloads

    @pytest.mark.parametrize("burst", [1, 7, 256])
    def test_burst_size_does_not_change_what_is_delivered(self, tmp_path: Path, burst: int) -> None:
        """Bursts of 1, 7 or 256 deliver the same packets."""
        payloads = self.payloads(100, seed=burst)
        with self._open(self.source_config(tmp_path, payloads)) as backend:
            _, rec = self._run(backend, burst)
        self._assert_delivered(rec, payloads)

    def test_no_packet_after_the_end(self, tmp_path: Path) -> None:
        """Once the source has ended, another run gets nothing and ends at once."""
        with self._open(self.source_config(tmp_path, self.payloads(20))) as backend:
            self._run(backend)
            summary, rec = self._run(backend)
        assert rec.packets == [] and summary.stop_reason == "end_of_source"

    def test_packet_limit_stops_exactly(self, tmp_path: Path) -> None:
        """``max_packets`` of half the source's packets stops after exactly
        that many, and they are the first ones (a byte-stream backend's
        packets are learnt from a full run first)."""
        payloads = self.payloads(300)
        config = self.source_config(tmp_path, payloads)
        first = payloads
        if self.stream:
            with self._open(config) as backend:
                first = [p.data for p in self._run(backend)[1].packets]
        limit = len(first) // 2
        assert limit >= 2, "the source should deliver at least 4 packets for this test"
        with self._open(config) as backend:
            rec = _Recorder()
            summary = Pipeline(backend, rec, run={"max_packets": limit, "burst": 3}).run()
        assert summary.stop_reason == "packet_limit" and len(rec.packets) == limit
        assert [p.data for p in rec.packets] == first[:limit]

    def test_close_is_idempotent(self, tmp_path: Path) -> None:
        """``close()`` twice is harmless."""
        backend = self._open(self.source_config(tmp_path, self.payloads(5)))
        backend.close()
        backend.close()

    def test_stats_are_a_dict_with_drops(self, tmp_path: Path) -> None:
        """``stats()`` is a dict; ``drops`` (if any) maps reasons to counts."""
        with self._open(self.source_config(tmp_path, self.payloads(5))) as backend:
            self._run(backend)
            stats = backend.stats()
        assert isinstance(stats, dict)
        assert all(isinstance(k, str) and isinstance(v, int) for k, v in stats.get("drops", {}).items())

    def test_broken_sources_are_refused_or_counted(self, tmp_path: Path) -> None:
        """Each of :meth:`corrupt_configs` raises a clear error (on open or in
        the summary's ``error``) or runs to an end - never crashes or hangs.
        No broken sources at all fails: the check must check something."""
        configs = self.corrupt_configs(tmp_path)
        assert configs, "corrupt_configs() (hook conformance_corrupt) gave no broken source to check"
        for config in configs:
            try:
                with self._open(config) as backend:
                    summary, _ = self._run(backend)
            except CLEAR_ERRORS as exc:
                assert str(exc).strip(), f"{config}: an error with no text"
                continue
            assert summary.stop_reason in ("end_of_source", "backend_error"), (config, summary)
            assert summary.stop_reason != "backend_error" or summary.error, config


class NativeBackendConformance(BackendConformance):
    """:class:`BackendConformance` plus the checks of a backend with a C table."""

    def test_a_table_of_another_abi_is_refused(self, tmp_path: Path) -> None:
        """The run loop refuses this backend's table once its ABI version or
        size is wrong (the check a plugin built against another rxfeed meets)."""
        with self._open(self.source_config(tmp_path, self.payloads(3))) as backend:
            capsule = backend.native_capsule()
            assert capsule is not None, "a native backend returns its C table from native_capsule()"
            ops = _BackendOps.from_address(_capsule_get(capsule, _BACKEND_NAME))
            for field, value in (("abi_version", ops.abi_version + 1), ("struct_size", 8)):
                bad = _BackendOps.from_buffer_copy(ops)
                setattr(bad, field, value)
                with pytest.raises(ValueError, match="ABI"):
                    _runloop.run_native(_capsule_new(ctypes.addressof(bad), _BACKEND_NAME, None),
                                        _runloop.null_decoder())

    @pytest.mark.parametrize("burst", [1, 32])
    def test_every_burst_is_released_once_and_nothing_follows_the_end(self, tmp_path: Path, burst: int) -> None:
        """Through a recording shim around the C table, in the real loop (in
        poison mode): each burst ``rx_burst`` hands out is given back to
        ``release`` once, with the same packets (the backend's own pointers),
        before the next ``rx_burst``; no two packets of a burst share bytes
        (a buffer is not handed out again while in use); after ``RXF_EOF``
        the table hands out nothing more."""
        with self._open(self.source_config(tmp_path, self.payloads(200))) as backend:
            shim = _ReleaseShim(backend.native_capsule())
            packets, reason, _ = _runloop.run_native(shim.capsule(), _runloop.null_decoder(), burst, poison=True)
            assert reason == "end_of_source" and shim.errors == [], shim.errors
            assert shim.handed == shim.released == packets and shim.outstanding is None
            assert shim.poll_after_end() <= 0, "a packet after RXF_EOF"

    def test_poison_mode_delivers_the_same(self, tmp_path: Path) -> None:
        """With released buffers poisoned (``RXFEED_POISON_RELEASED``), the
        same payloads reach the decoder: the loop's copies and the backend's
        release of its own pointers work together."""
        payloads = self.payloads(100)
        with self._open(self.source_config(tmp_path, payloads)) as backend, poisoned():
            summary, rec = self._run(backend, 7)
        assert summary.stop_reason == "end_of_source", summary.error
        self._assert_delivered(rec, payloads)


class _Packet(ctypes.Structure):
    """``rxf_packet`` (rxfeed/abi.h)."""

    _fields_ = [("data", ctypes.c_void_p), ("len", ctypes.c_uint32), ("flags", ctypes.c_uint32),
                ("rx_ts_ns", ctypes.c_uint64), ("src_ip", ctypes.c_uint32), ("dst_ip", ctypes.c_uint32),
                ("src_port", ctypes.c_uint16), ("dst_port", ctypes.c_uint16), ("line", ctypes.c_uint32)]


_RX = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(_Packet), ctypes.c_uint32)
_RELEASE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(_Packet), ctypes.c_uint32)


class _ReleaseShim:
    """A backend table whose calls go through Python (ctypes callbacks take
    the GIL) to the real one, recording what was handed out and given back."""

    def __init__(self, capsule: Any) -> None:
        self.real = _BackendOps.from_address(_capsule_get(capsule, _BACKEND_NAME))
        self.real_rx = _RX(self.real.rx_burst)
        self.real_release = _RELEASE(self.real.release) if self.real.release else None
        self.handed = self.released = 0
        self.outstanding: list[tuple[int, int]] | None = None
        self.errors: list[str] = []
        self._rx, self._release = _RX(self._on_rx), _RELEASE(self._on_release)
        self.ops = _BackendOps.from_buffer_copy(self.real)
        self.ops.rx_burst = ctypes.cast(self._rx, ctypes.c_void_p).value
        self.ops.release = ctypes.cast(self._release, ctypes.c_void_p).value

    def capsule(self) -> Any:
        return _capsule_new(ctypes.addressof(self.ops), _BACKEND_NAME, None)

    def _on_rx(self, ctx: int, pkts: Any, max_n: int) -> int:
        if self.outstanding is not None:
            self.errors.append("rx_burst called before the last burst was released")
        n = int(self.real_rx(ctx, pkts, max_n))
        if n > max_n:
            self.errors.append(f"rx_burst returned {n} > max {max_n}")
        if n > 0:
            self.handed += n
            self.outstanding = [(pkts[i].data or 0, pkts[i].len) for i in range(n)]
            self._check_no_shared_bytes(self.outstanding)
        return n

    def _check_no_shared_bytes(self, spans: list[tuple[int, int]]) -> None:
        """Two packets of one burst on the same bytes: one buffer handed out
        twice while in use (e.g. every packet read into one scratch buffer)."""
        spans = sorted(s for s in spans if s[1])
        for (a, alen), (b, _) in zip(spans, spans[1:]):
            if a + alen > b:
                self.errors.append("two packets of one burst share bytes (a buffer handed out again while in use)")
                return

    def _on_release(self, ctx: int, pkts: Any, n: int) -> None:
        got = [(pkts[i].data or 0, pkts[i].len) for i in range(n)]
        if got != self.outstanding:
            self.errors.append(f"release of {n} packets that are not the last burst's")
        self.released += n
        self.outstanding = None
        if self.real_release is not None:
            self.real_release(ctx, pkts, n)

    def poll_after_end(self) -> int:
        pkts = (_Packet * 8)()
        return int(self.real_rx(self.real.ctx, pkts, 8))



class ReplayAgainConformance(BackendConformance):
    """:class:`BackendConformance` plus source reset, for a backend whose
    config can replay its source (set :attr:`reset_option`, e.g. ``loops``)."""

    reset_option: str

    def test_source_reset_flags_the_first_packet_of_each_pass(self, tmp_path: Path) -> None:
        """With :attr:`reset_option` = 2, the source plays twice and the second
        pass starts with a ``PKT_SOURCE_RESET`` packet."""
        payloads = self.payloads(10)
        config = {**self.source_config(tmp_path, payloads), self.reset_option: 2}
        with self._open(config) as backend:
            _, rec = self._run(backend)
        self._assert_delivered(rec, payloads * 2)
        resets = [i for i, p in enumerate(rec.packets) if p.flags & 0x2]
        assert len(resets) == 1 and b"".join(p.data for p in rec.packets[resets[0]:]) == b"".join(payloads)


class DecoderConformance:
    """Inherited tests for a :class:`~rxfeed.ProtocolDecoder` plugin.

    Set :attr:`decoder`; implement :meth:`valid_payloads` (payloads whose
    messages the decoder must count exactly: ``(payloads, messages)``).
    """

    #: registry name or ProtocolDecoder subclass
    decoder: str | type[Any]
    #: True when payloads are chunks of a byte stream
    stream: bool = False

    def valid_payloads(self) -> tuple[list[bytes], int]:
        raise NotImplementedError

    def _make(self) -> Any:
        cls = get_plugins().decoders.get(self.decoder) if isinstance(self.decoder, str) else self.decoder
        return cls(cls.Config())

    def _run(self, payloads: Sequence[Any], burst: int = 32) -> Any:
        backend = _ListBackend(payloads, self.stream)
        return Pipeline(backend, self._make(), run={"burst": burst}).run()

    def test_counts_every_message_of_valid_input(self) -> None:
        """Valid payloads: ``messages`` as expected, per type summing to it, no errors."""
        payloads, messages = self.valid_payloads()
        summary = self._run(payloads)
        assert summary.stop_reason in GOOD_ENDS, summary.error
        assert summary.messages == messages
        assert sum(summary.messages_per_type.values()) == messages
        assert summary.errors == {}

    def test_burst_size_does_not_change_the_counts(self) -> None:
        """Bursts of 1 and 64 count the same."""
        payloads, _ = self.valid_payloads()
        one, many = self._run(payloads, 1), self._run(payloads, 64)
        assert (one.messages, one.messages_per_type, one.errors) == \
            (many.messages, many.messages_per_type, many.errors)

    @pytest.mark.parametrize("seed", range(3))
    def test_malformed_input_is_counted_never_fatal(self, seed: int) -> None:
        """Truncated, bit-flipped, empty and random payloads: the run ends
        normally, nothing raises, and no more messages are counted than the
        valid input holds plus what random bytes could frame."""
        rng = random.Random(seed)
        payloads, messages = self.valid_payloads()
        bad: list[bytes] = [b"", rng.randbytes(3), rng.randbytes(1500)]
        for p in payloads:
            cut = p[:rng.randrange(0, len(p) + 1)]
            flipped = bytearray(p)
            if flipped:
                flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
            bad += [cut, bytes(flipped)]
        summary = self._run(bad)
        assert summary.stop_reason in GOOD_ENDS, summary.error
        assert sum(summary.messages_per_type.values()) == summary.messages
        framable = sum(len(p) for p in bad)
        assert summary.messages + summary.duplicates <= framable, \
            f"{summary.messages} messages (+{summary.duplicates} duplicates) out of {framable} bytes: a count " \
            f"or length field was trusted beyond the bytes received"
        assert sum(summary.errors.values()) + summary.gaps + sum(summary.drops.values()) > 0, \
            "corrupted input (empty, 3 random bytes, cut and bit-flipped payloads) counted as nothing wrong"
        self._assert_gap_counts(summary)

    @staticmethod
    def _assert_gap_counts(summary: Any) -> None:
        """``gaps`` counts gap events, ``gap_messages`` what they lost: both
        ints, and each gap loses at least one message."""
        assert isinstance(summary.gaps, int) and isinstance(summary.gap_messages, int)
        assert summary.gap_messages >= summary.gaps, \
            f"{summary.gaps} gaps but gap_messages {summary.gap_messages}: `gaps` counts gap events, " \
            f"`gap_messages` the messages missing in them (docs/writing-a-plugin.md, 'A decoder')"

    @pytest.mark.parametrize("burst", [1, 32])
    def test_released_buffers_poisoned_change_nothing(self, tmp_path: Path, burst: int) -> None:
        """Buffer lifetime: the same summary and ``counters()`` when every
        packet's bytes are overwritten with a poison pattern once its burst
        is decoded (poison mode) as without - a decoder that reads a packet
        after its burst (say a pointer kept to the previous datagram) counts
        differently. A Python decoder is fed by a native backend (pcap_replay
        over the payloads) and must keep no view, slice or array of
        ``Packet.data`` past ``on_packets`` (the run stops with ``decoder_error``)."""
        payloads, _ = self.valid_payloads()
        plain = self._lifetime_run(tmp_path, payloads, burst, poison=False)
        assert plain[0] in GOOD_ENDS, plain[1]
        assert self._lifetime_run(tmp_path, payloads, burst, poison=True) == plain, \
            "the decoder read packet bytes after their burst was released"

    def _lifetime_run(self, tmp_path: Path, payloads: list[bytes], burst: int, poison: bool) -> tuple[Any, ...]:
        dec = self._make()
        backend = self._native_source(tmp_path, payloads) if isinstance(dec, PythonDecoder) \
            else _ListBackend(payloads, self.stream)
        with backend, poisoned(poison):
            s = Pipeline(backend, dec, run={"burst": burst}).run()
        return s.stop_reason, s.error, s.messages, s.messages_per_type, s.errors, dec.counters()

    def _native_source(self, tmp_path: Path, payloads: list[bytes]) -> RxBackend[Any]:
        """pcap_replay over ``payloads`` (as a byte stream when :attr:`stream`)."""
        from rxfeed.tools.generator import udp_frame, write_pcap

        if any(len(p) > 65000 for p in payloads):
            pytest.fail("valid_payloads() must fit in UDP datagrams (<= 65000 bytes) for the lifetime check")
        path = tmp_path / "lifetime.pcap"
        write_pcap(path, [(i * 1000, udp_frame(bytes(p))) for i, p in enumerate(payloads)], nsec=True)
        cls: type[RxBackend[Any]] = get_plugins().backends.get("pcap_replay")
        if self.stream:
            cls = type("StreamPcapReplay", (cls,), {"stream": True})
        return cls(cls.Config.model_validate({"path": str(path)}))

    def test_counters_have_the_summary_keys(self) -> None:
        """``counters()`` before and after a run: ``messages`` an int,
        ``messages_per_type`` a dict adding up to it, ``errors`` a dict of
        counts; the summary (its ``decoder_stats`` too) is JSON."""
        dec = self._make()
        for _ in range(2):
            c = dec.counters()
            assert isinstance(c.get("messages", 0), int)
            assert isinstance(c.get("messages_per_type", {}), dict)
            assert sum(c.get("messages_per_type", {}).values()) == c.get("messages", 0)
            assert all(isinstance(v, int) for v in c.get("errors", {}).values())
            assert isinstance(c.get("gaps", 0), int) and isinstance(c.get("gap_messages", 0), int)
            assert c.get("gap_messages", 0) >= c.get("gaps", 0), "gap_messages (messages lost) < gaps (events)"
            payloads, _ = self.valid_payloads()
            summary = Pipeline(_ListBackend(payloads, self.stream), dec).run()
            assert json.loads(summary.to_json())["decoder_stats"] == summary.decoder_stats


class _DecoderOps(ctypes.Structure):
    """``rxf_decoder_ops`` (rxfeed/abi_types.h)."""

    _fields_ = [("abi_version", ctypes.c_uint32), ("struct_size", ctypes.c_uint32), ("ctx", ctypes.c_void_p),
                ("on_burst", ctypes.c_void_p), ("on_end", ctypes.c_void_p), ("last_error", ctypes.c_void_p)]


_DECODER_NAME = b"rxfeed.decoder_ops.v1"
_ON_BURST = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(_Packet), ctypes.c_uint32)
_LAST_ERROR = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)


class _StoppingDecoderShim:
    """A copy of a decoder's C table whose ``on_burst`` passes ``good_bursts``
    bursts to the real one, then returns non-zero with ``last_error`` saying
    :attr:`WHY` (a decoder that meets something it cannot go on from)."""

    WHY = b"conformance: the decoder gave up on this burst"

    def __init__(self, capsule: Any, good_bursts: int) -> None:
        self.capsule_in = capsule  # keeps the real table alive
        real = _DecoderOps.from_address(_capsule_get(capsule, _DECODER_NAME))
        self.real_on_burst = _ON_BURST(real.on_burst)
        self.good_bursts, self.bursts = good_bursts, 0
        self._why = ctypes.create_string_buffer(self.WHY)
        self._on_burst, self._last_error = _ON_BURST(self._burst), _LAST_ERROR(self._error)
        self.ops = _DecoderOps.from_buffer_copy(real)
        self.ops.on_burst = ctypes.cast(self._on_burst, ctypes.c_void_p).value
        self.ops.last_error = ctypes.cast(self._last_error, ctypes.c_void_p).value

    def capsule(self) -> Any:
        return _capsule_new(ctypes.addressof(self.ops), _DECODER_NAME, None)

    def _burst(self, ctx: int, pkts: Any, n: int) -> int:
        self.bursts += 1
        if self.bursts > self.good_bursts:
            return 1
        return int(self.real_on_burst(ctx, pkts, n))

    def _error(self, ctx: int) -> int:
        return ctypes.addressof(self._why)


class NativeDecoderConformance(DecoderConformance):
    """:class:`DecoderConformance` plus the checks of a decoder with a C table
    (``decoder_capsule()``)."""

    def test_a_table_of_another_abi_is_refused(self) -> None:
        """The run loop refuses this decoder's table, with a ValueError naming
        the ABI, once its ABI version or size is wrong (a decoder built
        against another rxfeed)."""
        dec = self._make()
        capsule = dec.decoder_capsule()
        assert capsule is not None, "a native decoder returns its C table from decoder_capsule()"
        ops = _DecoderOps.from_address(_capsule_get(capsule, _DECODER_NAME))
        payloads, _ = self.valid_payloads()
        for field, value in (("abi_version", ops.abi_version + 1), ("struct_size", 8)):
            bad = _DecoderOps.from_buffer_copy(ops)
            setattr(bad, field, value)
            with pytest.raises(ValueError, match="ABI"):
                _runloop.run_python(_ListBackend(payloads, self.stream),
                                    _capsule_new(ctypes.addressof(bad), _DECODER_NAME, None))

    def test_a_decoder_that_stops_ends_the_run_with_its_error(self) -> None:
        """Through a shim around the C table: once ``on_burst`` returns
        non-zero (after 2 good bursts of 1 packet), the run stops there -
        ``stop_reason`` ``decoder_stopped``, the table's ``last_error`` text
        in the summary's ``error``, only the packets of the bursts before
        counted, and the decoder's counters still a valid summary."""
        payloads, _ = self.valid_payloads()
        assert len(payloads) >= 3, "valid_payloads() should give at least 3 payloads for this test"
        dec = self._make()
        shim = _StoppingDecoderShim(dec.decoder_capsule(), good_bursts=2)
        dec.decoder_capsule = shim.capsule  # the Pipeline asks the instance
        summary = Pipeline(_ListBackend(payloads, self.stream), dec, run={"burst": 1}).run()
        assert summary.stop_reason in ("decoder_stopped", "decoder_error"), (summary.stop_reason, summary.error)
        assert summary.error == _StoppingDecoderShim.WHY.decode()
        assert shim.bursts == 3, "the loop went on after on_burst asked it to stop"
        assert summary.packets <= 2 and sum(summary.messages_per_type.values()) == summary.messages
        json.loads(summary.to_json())


class _ListBackend(RxBackend[PluginConfig]):
    name = "conformance_list"
    Config = PluginConfig

    def __init__(self, payloads: Sequence[Any], stream: bool) -> None:
        super().__init__(PluginConfig())
        self._items = list(payloads)
        self.stream = stream  # type: ignore[misc]

    def read_burst(self, max_packets: int) -> list[Any] | None:
        if not self._items:
            return None
        out, self._items = self._items[:max_packets], self._items[max_packets:]
        return out


# --- pytest --rxfeed-conformance NAME ---------------------------------------------
# The kit's classes for an installed plugin, from what its class gives the kit:
#   decoders: conformance_samples() -> (payloads, messages); conformance_stream = True
#             when the payloads are chunks of a byte stream
#   backends: conformance_source(tmp_path, payloads) -> config; optional
#             conformance_corrupt(tmp_path) -> [config], conformance_payloads(n, seed),
#             conformance_opened(backend) (a live source sends here),
#             conformance_reset_option (a replay-again field, e.g. "loops"),
#             conformance_one_per_process = True (each test in a new process)

def conformance_classes(name: str) -> dict[str, type]:
    """Test classes running the suites that fit the registered backend and/or
    decoder ``name``; a plugin class without what a suite needs gets one
    failing test saying so (never a suite that passes having checked nothing)."""
    plugins = get_plugins()
    out: dict[str, type] = {}
    if name in plugins.backends:
        out[f"TestBackend_{name}"] = backend_kit(plugins.backends.get(name))
    if name in plugins.decoders:
        out[f"TestDecoder_{name}"] = decoder_kit(plugins.decoders.get(name))
    if not out:
        raise LookupError(f"no backend or decoder named {name!r} is installed (backends: "
                          f"{', '.join(plugins.backends.names())}; decoders: {', '.join(plugins.decoders.names())})")
    return out


def _missing(kind: str, cls: type, what: str) -> type:
    """A class whose one test fails, naming what the plugin must provide."""
    def test_the_plugin_gives_the_kit_what_it_needs(self: Any) -> None:
        pytest.fail(f"the {kind} suite cannot run: {cls.__module__}.{cls.__qualname__} has no {what} "
                    f"(docs/writing-a-plugin.md, 'Conformance kit')", pytrace=False)

    return type(f"Missing_{cls.__name__}", (), {"test_the_plugin_gives_the_kit_what_it_needs":
                                                test_the_plugin_gives_the_kit_what_it_needs})


def backend_kit(cls: type[RxBackend[Any]], own_processes: bool = True) -> type:
    """BackendConformance (+ Native / ReplayAgain when they apply) over
    ``cls``'s hooks; each test in a process of its own when the class says
    ``conformance_one_per_process`` (and ``own_processes``)."""
    if not hasattr(cls, "conformance_source"):
        return _missing("backend", cls, "conformance_source(tmp_path, payloads) -> config")
    bases: list[type] = []
    if cls.native_capsule is not RxBackend.native_capsule:
        bases.append(NativeBackendConformance)
    body: dict[str, Any] = {"backend": cls, "stream": bool(getattr(cls, "stream", False)),
                            "source_config": _forward(cls.conformance_source)}
    if getattr(cls, "conformance_reset_option", None):
        bases.append(ReplayAgainConformance)
        body["reset_option"] = cls.conformance_reset_option
    for hook, method in (("conformance_corrupt", "corrupt_configs"), ("conformance_payloads", "payloads"),
                         ("conformance_opened", "source_opened")):
        if hasattr(cls, hook):
            body[method] = _forward(getattr(cls, hook))
    kit = type(f"Kit_{cls.__name__}", tuple(bases) or (BackendConformance,), body)
    if own_processes and getattr(cls, "conformance_one_per_process", False):
        for name in dir(kit):
            if name.startswith("test_"):
                setattr(kit, name, _in_own_process(name, getattr(kit, name)))
    return kit


def _in_own_process(name: str, test: Any) -> Any:
    """``test`` run in a new Python process (same arguments; its failure output
    becomes this test's)."""
    @functools.wraps(test)
    def run(self: BackendConformance, tmp_path: Path, **params: Any) -> None:
        cls = self._class()
        code = "import sys; from rxfeed.tools.conformance import run_one_test; run_one_test(*sys.argv[1:])"
        argv = [f"{cls.__module__}:{cls.__qualname__}", name, json.dumps(params), str(tmp_path)]
        p = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, f"{name}{params or ''} in its own process failed:\n{p.stdout}{p.stderr}"

    return run


def run_one_test(target: str, name: str, params: str, tmp_path: str) -> None:
    """One kit test of the backend ``module:Class`` (what :func:`_in_own_process` runs)."""
    module, _, qualname = target.partition(":")
    cls: Any = importlib.import_module(module)
    for part in qualname.split("."):
        cls = getattr(cls, part)
    getattr(backend_kit(cls, own_processes=False)(), name)(Path(tmp_path), **json.loads(params))


def _forward(hook: Any) -> Any:
    """A kit method calling the plugin's hook with the kit's arguments."""
    return lambda self, *args, **kwargs: hook(*args, **kwargs)


def decoder_kit(cls: type[Any]) -> type:
    """DecoderConformance (NativeDecoderConformance for a decoder with a C
    table) over ``cls.conformance_samples()``."""
    if not hasattr(cls, "conformance_samples"):
        return _missing("decoder", cls, "conformance_samples() -> (payloads, messages)")
    base = DecoderConformance if issubclass(cls, PythonDecoder) else NativeDecoderConformance
    return type(f"Kit_{cls.__name__}", (base,),
                {"decoder": cls, "stream": bool(getattr(cls, "conformance_stream", False)),
                 "valid_payloads": _forward(cls.conformance_samples)})
