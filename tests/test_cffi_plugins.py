"""The cffi route: a third-party backend and a C handler table for ITCH
records, written in C and built with cffi's API mode (no Cython, no CPython
module code), joining the nogil loop through rxfeed.ffi."""

from __future__ import annotations

import struct
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from rxfeed import Pipeline, RxBackend, ffi as rxffi
from rxfeed.config import PluginConfig
from rxfeed.protocols.itch50 import Itch50Decoder
from rxfeed.protocols.itch50 import ffi as itch_ffi
from rxfeed.tools.conformance import NativeBackendConformance
from rxfeed.tools.generator import generate_messages, moldudp64_datagrams

from .c_harness import build_module

BACKEND_C = r"""
#include <string.h>
#include "rxfeed/abi.h"

/* Replays [u32 LE length][payload] records from memory the caller owns. */
typedef struct { const uint8_t *buf; size_t len, pos; uint64_t packets; char error[64]; } reader;

static int rd_burst(void *ctx, rxf_packet *pkts, uint32_t max) {
    reader *r = ctx;
    uint32_t n = 0;
    while (n < max) {
        if (r->pos == r->len) return n ? (int)n : RXF_EOF;
        uint32_t plen;
        if (r->len - r->pos < 4) { strcpy(r->error, "truncated length"); return n ? (int)n : RXF_ERROR; }
        memcpy(&plen, r->buf + r->pos, 4);
        if (plen > r->len - r->pos - 4) { strcpy(r->error, "record past the end"); return n ? (int)n : RXF_ERROR; }
        memset(&pkts[n], 0, sizeof pkts[n]);
        pkts[n].data = r->buf + r->pos + 4;
        pkts[n].len = plen;
        r->pos += 4 + (size_t)plen;
        r->packets++;
        n++;
    }
    return (int)n;
}

static const char *rd_error(void *ctx) { return ((reader *)ctx)->error; }

void reader_init(reader *r, rxf_backend_ops *ops, const uint8_t *buf, size_t len) {
    memset(r, 0, sizeof *r);
    r->buf = buf; r->len = len;
    ops->abi_version = RXF_ABI_VERSION;
    ops->struct_size = sizeof *ops;
    ops->ctx = r;
    ops->rx_burst = rd_burst;
    ops->release = NULL;
    ops->last_error = rd_error;
}
"""

BACKEND_CDEF = """
typedef struct { uint64_t packets; char error[64]; ...; } reader;
void reader_init(reader *r, rxf_backend_ops *ops, const uint8_t *buf, size_t len);
"""

HANDLERS_C = r"""
#include "itch50_handlers.h"

/* Counts every message by type and sums AddOrder shares and prices, from
   the decoded record and from the wire view (itch50_wire.h accessors). */
typedef struct { uint64_t by_type[256]; uint64_t add_shares, add_price_sum, last_sequence;
                 uint64_t wire_add_shares, wire_add_price_sum, wire_bad_len; } tally;

static void on_any(void *ctx, const rxf_itch_record *r, const rxf_itch_meta *m) {
    tally *t = ctx;
    t->by_type[(uint8_t)r->hdr.type]++;
    if (m->has_sequence) t->last_sequence = m->sequence;
}

static void on_add(void *ctx, const rxf_itch_record *r, const rxf_itch_meta *m) {
    tally *t = ctx;
    on_any(ctx, r, m);
    t->add_shares += r->AddOrder.shares;
    t->add_price_sum += r->AddOrder.price;
}

static void on_add_wire(void *ctx, const uint8_t *msg, uint32_t len, const rxf_itch_meta *m) {
    tally *t = ctx;
    if (len != sizeof(rxf_itch_wire_AddOrder) || m->raw != msg) t->wire_bad_len++;
    t->wire_add_shares += itch_add_order_shares(msg);
    t->wire_add_price_sum += itch_add_order_price(msg);
}

void tally_init(rxf_itch_handlers *h, tally *t) {
    memset(t, 0, sizeof *t);
    h->ctx = t;
    for (int i = 0; i < 256; i++) h->on[i] = on_any;
    h->on['A'] = on_add;
    h->wire['A'] = on_add_wire;
}
"""

HANDLERS_CDEF = """
typedef struct { uint64_t by_type[256]; uint64_t add_shares, add_price_sum, last_sequence;
                 uint64_t wire_add_shares, wire_add_price_sum, wire_bad_len; } tally;
void tally_init(rxf_itch_handlers *h, tally *t);
"""


def _build(tmp_path_factory, name, cdef, source, build_args):
    return build_module(name, cdef, source, **build_args)


_BACKEND_MODULES: dict[str, Any] = {}


def _backend_module(name: str = "_rxf_cffi_backend", source: str = BACKEND_C) -> Any:
    """The cffi backend module (built once per process, into a temporary directory)."""
    import tempfile

    class _Dirs:
        def mktemp(self, n):
            return Path(tempfile.mkdtemp(prefix=n))

    if name not in _BACKEND_MODULES:
        _BACKEND_MODULES[name] = _build(_Dirs(), name, rxffi.ABI_CDEF + BACKEND_CDEF, source, rxffi.build_args())
    return _BACKEND_MODULES[name]


@pytest.fixture(scope="module")
def backend_module():
    return _backend_module()


@pytest.fixture(scope="module")
def handlers_module(tmp_path_factory):
    return _build(tmp_path_factory, "_rxf_cffi_handlers", itch_ffi.HANDLERS_CDEF + HANDLERS_CDEF, HANDLERS_C,
                  itch_ffi.build_args())


class CffiConfig(PluginConfig):
    data: bytes


class CffiDatagramBackend(RxBackend):
    """An RxBackend whose whole receive path is C built by cffi."""

    name = "cffi_datagrams"
    Config = CffiConfig

    def __init__(self, config: CffiConfig, mod) -> None:
        super().__init__(config)
        self.ffi, self.lib = mod.ffi, mod.lib
        self._buf = self.ffi.from_buffer(config.data)  # the C reader points into it
        self._reader = self.ffi.new("reader *")
        self._ops = self.ffi.new("rxf_backend_ops *")
        self.lib.reader_init(self._reader, self._ops, self._buf, len(config.data))

    def native_capsule(self):
        return rxffi.backend_capsule(self.ffi, self._ops)

    def stats(self):
        return {"packets": self._reader.packets}


def _datagram_file(messages) -> bytes:
    return b"".join(struct.pack("<I", len(p)) + p for _, p in moldudp64_datagrams(messages))


def test_cffi_backend_feeds_the_native_decoder(backend_module):
    msgs = list(generate_messages(5000, symbols=3, seed=11))
    backend = CffiDatagramBackend(CffiConfig(data=_datagram_file(msgs)), backend_module)
    got = []
    dec = Itch50Decoder()
    dec.subscribe(lambda m: got.append(m.type))
    s = Pipeline(backend, dec).run()
    assert s.messages == 5000 and s.gaps == 0 and s.errors == {}
    assert "".join(got) == "".join(chr(m[0]) for m in msgs)
    assert s.packets == backend._reader.packets


def test_cffi_backend_error_text_reaches_the_summary(backend_module):
    data = _datagram_file(list(generate_messages(500, symbols=1, seed=2)))
    backend = CffiDatagramBackend(CffiConfig(data=data[:-3]), backend_module)  # last record cut short
    s = Pipeline(backend, Itch50Decoder()).run()
    assert s.stop_reason == "backend_error" and "record past the end" in s.error


def test_cffi_handler_table_sees_every_record_in_c(handlers_module, day_dir):
    ffi, lib = handlers_module.ffi, handlers_module.lib
    table, tally = ffi.new("rxf_itch_handlers *"), ffi.new("tally *")
    lib.tally_init(table, tally)
    pipe = Pipeline("pcap_replay", "itch50", backend_config={"path": str(day_dir / "day.pcap")})
    pipe.decoder.add_handlers(itch_ffi.handlers_capsule(ffi, table))
    types: Counter[str] = Counter()
    adds = [0, 0]

    def on_msg(m):
        types[m.type] += 1
        if m.type == "A":
            adds[0] += m.shares
            adds[1] += m.price

    pipe.decoder.subscribe(on_msg)
    s = pipe.run()
    assert s.messages == 20_000
    assert {chr(i): tally.by_type[i] for i in range(256) if tally.by_type[i]} == dict(types)
    assert [tally.add_shares, tally.add_price_sum] == adds
    assert [tally.wire_add_shares, tally.wire_add_price_sum] == adds and tally.wire_bad_len == 0
    assert tally.last_sequence == 20_000


def test_cffi_tables_are_checked(backend_module, handlers_module):
    ffi = backend_module.ffi
    ops = ffi.new("rxf_backend_ops *")
    with pytest.raises(ValueError, match="ABI"):
        rxffi.backend_capsule(ffi, ops)  # abi_version / struct_size left zero
    ops.abi_version, ops.struct_size = ffi.integer_const("RXF_ABI_VERSION"), ffi.sizeof("rxf_backend_ops")
    with pytest.raises(ValueError, match="rx_burst"):
        rxffi.backend_capsule(ffi, ops)
    with pytest.raises(TypeError, match="rxf_backend_ops"):
        rxffi.backend_capsule(ffi, ffi.new("rxf_decoder_ops *"))
    with pytest.raises(TypeError, match="rxf_itch_handlers"):
        itch_ffi.handlers_capsule(handlers_module.ffi, handlers_module.ffi.new("tally *"))


class _KitBackend(CffiDatagramBackend):
    """The cffi backend as the conformance kit opens it: Config(data=...)."""

    module_name, source = "_rxf_cffi_backend", BACKEND_C

    def __init__(self, config: CffiConfig) -> None:
        super().__init__(config, _backend_module(self.module_name, self.source))


class TestCffiBackendConformance(NativeBackendConformance):
    """The cffi-built backend passes the conformance kit like any other."""

    backend = _KitBackend

    def source_config(self, tmp_path, payloads):
        return {"data": b"".join(struct.pack("<I", len(p)) + p for p in payloads)}

    def corrupt_configs(self, tmp_path):
        # a cut length prefix; a record running past the end
        return [{"data": b"\x05\x00"}, {"data": struct.pack("<I", 100) + b"short"}]


def test_the_kit_catches_a_packet_after_the_end(tmp_path):
    """A reader that, once it has said RXF_EOF, hands out a packet again."""
    class Broken(_KitBackend):
        module_name, source = "_rxf_cffi_backend_broken", BACKEND_C.replace(
            "if (r->pos == r->len) return n ? (int)n : RXF_EOF;",
            "if (r->pos == r->len) { if (n) return (int)n; if (!r->error[63]) { r->error[63] = 1; return RXF_EOF; }"
            " memset(&pkts[0], 0, sizeof pkts[0]); pkts[0].data = r->buf + 4; pkts[0].len = 1; return 1; }")

    class TestBroken(TestCffiBackendConformance):
        backend = Broken

    with pytest.raises(AssertionError, match="a packet after RXF_EOF"):
        TestBroken().test_every_burst_is_released_once_and_nothing_follows_the_end(tmp_path, 1)


@pytest.mark.parametrize("refresh", [False, True])
def test_a_handler_table_is_read_when_attached_and_on_refresh(handlers_module, day_dir, refresh):
    """The decoder's dispatch table is built from the handler table when it is
    attached; a later change counts only after ``refresh_handlers()``."""
    ffi, lib = handlers_module.ffi, handlers_module.lib
    table, tally = ffi.new("rxf_itch_handlers *"), ffi.new("tally *")
    lib.tally_init(table, tally)
    pipe = Pipeline("nasdaq_file", "itch50", backend_config={"path": str(day_dir / "day.itch")})
    pipe.decoder.add_handlers(itch_ffi.handlers_capsule(ffi, table))
    table.wire[ord("A")] = ffi.NULL
    if refresh:
        pipe.decoder.refresh_handlers()
    s = pipe.run()
    assert tally.by_type[ord("A")] == s.messages_per_type["A"] > 0 and tally.add_shares > 0
    assert (tally.wire_add_shares == 0) == refresh
