"""Outputs users reach for: Parquet files and plots, built from the decoder's
numpy batches and the order books' event buffers. Memory stays bounded: every
batch is written as it arrives."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def records_to_arrow(arr: np.ndarray) -> Any:
    """A numpy record batch as a pyarrow Table: numeric columns as they are,
    alpha fields as right-trimmed strings, prices kept as integers."""
    import pyarrow as pa

    cols = {}
    for name in arr.dtype.names:
        if name.startswith("_"):
            continue  # padding
        col = arr[name]
        if col.dtype.names and col.ndim == 2:  # depth snapshot side: (n, N) of (price, orders, shares)
            for sub in col.dtype.names:
                flat = np.ascontiguousarray(col[sub]).reshape(-1)
                cols[f"{name}_{sub}"] = pa.FixedSizeListArray.from_arrays(pa.array(flat), col.shape[1])
            continue
        if col.dtype.kind == "S":
            cols[name] = pa.array(np.char.rstrip(np.char.decode(col, "latin-1"), " "))
        else:
            cols[name] = pa.array(np.ascontiguousarray(col))
    return pa.table(cols)


#: ITCH types that change a book or print a trade: only these fill the books' buffers
#: (books of another protocol say theirs as ``book_types``).
BOOK_TYPES = "AFECXDUPQ"


class ParquetOutput:
    """One Parquet file per message type (``messages_A.parquet``, ...), plus
    ``trades.parquet``, ``bbo.parquet`` and (with depth snapshots on)
    ``depth.parquet`` from the books, in ``directory``.

    Memory stays bounded whatever types are written: :meth:`attach` also
    subscribes the decoder's batches of every book-changing type, and each
    batch, written or not, drains the books. So between two drains at most one
    batch of each of :data:`BOOK_TYPES` passes, and each message adds at most
    one trade, one BBO change and one depth snapshot."""

    def __init__(self, directory: str | Path, books: Any = None) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.books = books
        self.types: frozenset[str] | None = None
        self._writers: dict[str, Any] = {}
        self.rows: dict[str, int] = {}

    def attach(self, decoder: Any, types: str | None = None) -> None:
        """Write ``decoder``'s messages of ``types`` (None: all); with books,
        also see every book-changing batch, to drain the books on time."""
        self.types = None if types is None else frozenset(types)
        wanted = types
        if types is not None and self.books is not None:
            book_types = getattr(self.books, "book_types", BOOK_TYPES)
            wanted = types + "".join(t for t in book_types if t not in types)
        decoder.subscribe_batches(self.on_batch, wanted)

    def _write(self, name: str, table: Any) -> None:
        import pyarrow.parquet as pq

        w = self._writers.get(name)
        if w is None:
            w = self._writers[name] = pq.ParquetWriter(self.dir / f"{name}.parquet", table.schema)
        w.write_table(table)
        self.rows[name] = self.rows.get(name, 0) + table.num_rows

    def on_batch(self, type_char: str, arr: np.ndarray) -> None:
        """A full batch of one type: written if asked for; the books are drained."""
        if self.types is None or type_char in self.types:
            self._write(f"messages_{type_char}", records_to_arrow(arr))
        if self.books is not None:
            self.drain_books()

    def drain_books(self) -> None:
        """Write and empty the books' trade, BBO and depth buffers."""
        takers = [("trades", self.books.take_trades), ("bbo", self.books.take_bbo)]
        if self.books.counters()["depth_snapshots"]:
            takers.append(("depth", self.books.take_depth))
        for name, take in takers:
            arr = take()
            if len(arr):
                self._write(name, records_to_arrow(arr))

    def close(self) -> dict[str, int]:
        """Drain the books a last time, close every file; rows written per file."""
        if self.books is not None:
            self.drain_books()
        for w in self._writers.values():
            w.close()
        return dict(sorted(self.rows.items()))


def plot_symbol(books_bbo: np.ndarray, trades: np.ndarray, depth: dict[str, list], symbol: str,
                out: str | Path) -> Path:
    """PNG of a symbol's best bid/offer and trades over the day, and a depth snapshot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, axd) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [3, 1]})
    day_ns = 86_400 * 10**9  # ITCH: ns since midnight; IEX: ns since the epoch (hours shown in UTC)
    hours = (books_bbo["timestamp"] % day_ns) / 3.6e12
    bid = np.where(books_bbo["bid_price"] > 0, books_bbo["bid_price"] / 1e4, np.nan)
    ask = np.where(books_bbo["ask_price"] > 0, books_bbo["ask_price"] / 1e4, np.nan)
    ax.step(hours, bid, where="post", color="tab:green", lw=0.8, label="best bid")
    ax.step(hours, ask, where="post", color="tab:red", lw=0.8, label="best offer")
    if len(trades):
        ax.scatter((trades["timestamp"] % day_ns) / 3.6e12, trades["price"] / 1e4, s=4, color="black", alpha=0.5,
                   label="trades")
    ax.set_xlabel("hours since midnight")
    ax.set_ylabel("price ($)")
    ax.set_title(f"{symbol}: best bid/offer and trades")
    ax.legend(loc="best", fontsize=8)
    for side, color in (("bids", "tab:green"), ("asks", "tab:red")):
        lv = depth[side]
        if lv:
            axd.barh([p / 1e4 for p, _, _ in lv], [s for _, s, _ in lv], height=0.008, color=color, label=side)
    axd.set_xlabel("shares")
    axd.set_title("depth at end of day")
    axd.legend(fontsize=8)
    fig.tight_layout()
    out = Path(out)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
