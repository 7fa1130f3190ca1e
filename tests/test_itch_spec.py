"""The spec table is the single source: generated C, dtypes, classes and the
reference codec all agree with it, and with hand-checked bytes."""

from __future__ import annotations

import pytest

from rxfeed.protocols.itch50 import codegen, messages, reference, spec
from rxfeed.protocols.itch50._decoder import c_layout, decode_one
from rxfeed.protocols.itch50.dtypes import DTYPES


def test_generated_files_are_fresh():
    assert codegen.main(["--check"]) == 0, "run python protocols/itch50/codegen.py"


def test_build_check_refuses_stale_generated_files(tmp_path):
    """The meson step (codegen.py --check --stamp) fails on a stale output and
    writes its stamp only when every output matches spec.py."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    here = Path(codegen.__file__).parent
    src = Path(__file__).resolve().parents[1] / "protocols" / "itch50"
    for name in ("codegen.py", "spec.py", *codegen.OUTPUTS):
        shutil.copy((src if (src / name).exists() else here) / name, tmp_path / name)
    stamp = tmp_path / "fresh.h"
    run = [sys.executable, str(tmp_path / "codegen.py"), "--check", "--stamp", str(stamp)]
    assert subprocess.run(run).returncode == 0 and stamp.exists()
    stamp.unlink()
    with open(tmp_path / "_records.h", "a") as f:
        f.write("/* hand edit */\n")
    out = subprocess.run(run, capture_output=True, text=True)
    assert out.returncode == 1 and "_records.h" in out.stderr and not stamp.exists()
    build = (Path(__file__).resolve().parents[1] / "meson.build").read_text()
    assert "'--check', '--stamp'" in build and "itch_generated_fresh," in build


def test_every_type_of_itch50_is_in_the_table():
    assert sorted(spec.TYPES) == sorted("SRHYLVWKJhAFECXDUPQBINO")
    sizes = {m.type: m.wire_size for m in spec.MESSAGES}
    assert sizes == {"S": 12, "R": 39, "H": 25, "Y": 20, "L": 26, "V": 35, "W": 12, "K": 28, "J": 35, "h": 21,
                     "A": 36, "F": 40, "E": 31, "C": 36, "X": 23, "D": 19, "U": 35, "P": 44, "Q": 40, "B": 19,
                     "I": 50, "N": 20, "O": 48}


def test_c_layout_equals_numpy_dtypes():
    sizes = {}
    for t, name, off, size in c_layout():
        dt = DTYPES[t]
        if name == "":
            sizes[t] = off
            assert dt.itemsize == off
        else:
            assert dt.fields[name][1] == off, (t, name)
            assert dt.fields[name][0].itemsize == size, (t, name)
    assert set(sizes) == set(spec.TYPES)


def test_message_classes_follow_the_spec():
    for m in spec.MESSAGES:
        cls = messages.BY_TYPE[m.type]
        assert cls._fields == spec.HEADER_FIELDS + tuple(f.name for f in m.fields)


# Hand-assembled from the ITCH 5.0 specification's field table for 'A':
# type, locate=0x0001, tracking=0x0002, timestamp=0x00000000AB54A98CEB1F0
ADD_ORDER_BYTES = bytes.fromhex(
    "41" "0001" "0002" "2d2c3b3c4d5e"   # A, locate 1, tracking 2, timestamp
    "0000000000000457"                 # order reference 1111
    "42"                               # 'B'
    "00000064"                         # 100 shares
    "4141504c20202020"                 # 'AAPL    '
    "0016e360"                         # price 1,500,000 = $150.0000
)


def test_add_order_against_hand_checked_bytes():
    assert len(ADD_ORDER_BYTES) == 36
    msg = decode_one(ADD_ORDER_BYTES)
    assert msg == messages.AddOrder("A", 1, 2, 0x2D2C3B3C4D5E, 1111, "B", 100, "AAPL", 1_500_000)
    assert reference.encode("A", stock_locate=1, tracking_number=2, timestamp=0x2D2C3B3C4D5E,
                            order_reference_number=1111, buy_sell_indicator="B", shares=100, stock="AAPL",
                            price=1_500_000) == ADD_ORDER_BYTES


def _sample_fields(m: spec.Message, k: int) -> dict:
    vals = {}
    for i, f in enumerate(m.fields):
        if f.kind == "alpha":
            vals[f.name] = ("XYZ%d" % (k + i))[: f.size]
        elif f.kind == "char":
            vals[f.name] = chr(65 + (k + i) % 26)
        else:
            bits = {"u8": 8, "u16": 16, "u32": 32, "u64": 64, "price4": 32, "price8": 64}[f.kind]
            vals[f.name] = (0x0123456789ABCDEF * (i + 1 + k)) & ((1 << bits) - 1)
    return vals


@pytest.mark.parametrize("t", list(spec.TYPES))
def test_round_trip_every_type(t):
    m = spec.BY_TYPE[t]
    fields = _sample_fields(m, ord(t))
    raw = reference.encode(t, stock_locate=0xBEEF, tracking_number=0x1234, timestamp=(1 << 48) - 3, **fields)
    assert len(raw) == m.wire_size
    ref = reference.decode(raw)
    got = messages.to_dict(decode_one(raw))
    assert got == ref
    assert got["timestamp"] == (1 << 48) - 3
    for k, v in fields.items():
        assert got[k] == v


@pytest.mark.parametrize("t", list(spec.TYPES))
def test_wrong_length_is_refused(t):
    raw = reference.encode(t, **_sample_fields(spec.BY_TYPE[t], 1))
    with pytest.raises(ValueError, match="bad length"):
        decode_one(raw[:-1])
    with pytest.raises(ValueError, match="bad length"):
        decode_one(raw + b"\0")


def test_unknown_type_is_refused():
    with pytest.raises(ValueError, match="unknown"):
        decode_one(b"Z" + bytes(30))


def test_dtype_batches_hold_exact_values():
    from tests.conftest import run_payloads, mold  # noqa: F401

    raws = [reference.encode(t, stock_locate=7, timestamp=123, **_sample_fields(spec.BY_TYPE[t], 5))
            for t in spec.TYPES]
    from rxfeed import Pipeline
    from rxfeed.protocols.itch50 import Itch50Decoder
    from tests.conftest import ListBackend

    dec = Itch50Decoder()
    dec.subscribe_batches()
    Pipeline(ListBackend([mold(1, raws)]), dec).run()
    batches = dec.take_batches()
    assert set(batches) == set(spec.TYPES)
    for raw in raws:
        ref = reference.decode(raw)
        row = batches[ref["type"]][0]
        for name, v in ref.items():
            cell = row[name]
            if isinstance(cell, bytes):
                cell = cell.decode("latin-1").rstrip(" ")
            assert cell == v or (isinstance(v, str) and cell == v), (ref["type"], name)
