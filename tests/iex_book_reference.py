"""Plain-Python IEX books, written from IEX's specifications independently of
protocols/iex/iex_book.c: the reference the generator's days and the C books
are checked against. They take messages as dicts (``test_iex_spec.unpack``)
and refuse (assert on) any message a book could not take. Dicts and lists;
no attempt at speed.

* :class:`OrderBooks` -- DEEP+ order by order (Add Order, Order Modify,
  Order Delete, Order Executed, Clear Book; Trade and executions as trades).
* :class:`LevelBooks` -- DEEP price levels, each event applied when the
  update with the event-complete flag arrives.
* :class:`TopBooks` -- TOPS, the last Quote Update per symbol.

Every class has ``book()`` -> ``{(symbol, side): {price: size}}`` (side
"8" buy, "5" sell; empty sides left out) and ``top(symbol)`` ->
``(bid_size, bid_price, ask_price, ask_size)``, zeros for an empty side.
"""

from __future__ import annotations

Levels = dict[tuple[str, str], dict[int, int]]


def _top(levels: Levels, sym: str) -> tuple[int, int, int, int]:
    bids, asks = levels.get((sym, "8"), {}), levels.get((sym, "5"), {})
    bp, ap = max(bids, default=0), min(asks, default=0)
    return bids.get(bp, 0), bp, ap, asks.get(ap, 0)


class OrderBooks:
    """DEEP+ replayed order by order; refuses any message a book could not take."""

    def __init__(self) -> None:
        self.orders: dict[int, list] = {}  # id -> [symbol, side, size, price]
        self.queues: dict[tuple[str, str, int], list[int]] = {}  # (symbol, side, price) -> order ids, first first
        self.levels: Levels = {}  # (symbol, side) -> price -> size
        self.trades: list[tuple[int, int, int, int]] = []  # (trade id, size, price, flags)

    def _change(self, sym: str, side: str, price: int, delta: int) -> None:
        lv = self.levels.setdefault((sym, side), {})
        lv[price] = lv.get(price, 0) + delta
        assert lv[price] >= 0
        if lv[price] == 0:
            del lv[price]

    def _place(self, oid: int, sym: str, side: str, size: int, price: int) -> None:
        self.orders[oid] = [sym, side, size, price]
        self.queues.setdefault((sym, side, price), []).append(oid)
        self._change(sym, side, price, size)

    def _take(self, oid: int, size: int) -> None:
        o = self.orders[oid]
        assert 0 < size <= o[2]
        o[2] -= size
        self._change(o[0], o[1], o[3], -size)
        if o[2] == 0:
            del self.orders[oid]
            q = self.queues[(o[0], o[1], o[3])]
            q.remove(oid)
            if not q:
                del self.queues[(o[0], o[1], o[3])]

    def on(self, m: dict) -> None:
        t, sym = m["message_type"], m.get("symbol")
        if t == "a":
            assert m["order_id"] not in self.orders and m["size"] > 0 and m["side"] in "85"
            self._place(m["order_id"], sym, m["side"], m["size"], m["price"])
        elif t == "M":
            oid = m["order_id_reference"]
            o = self.orders[oid]
            assert o[0] == sym and m["size"] > 0
            if m["modify_flags"] & 1:  # priority kept: only a smaller size at the same price
                assert m["price"] == o[3] and m["size"] < o[2]
                self._take(oid, o[2] - m["size"])
            else:  # priority lost: to the back of the (new) level
                self._take(oid, o[2])
                self._place(oid, sym, o[1], m["size"], m["price"])
        elif t == "R":
            self._take(m["order_id_reference"], self.orders[m["order_id_reference"]][2])
        elif t == "L":
            assert self.orders[m["order_id_reference"]][3] == m["price"]
            self._take(m["order_id_reference"], m["size"])
            self.trades.append((m["trade_id"], m["size"], m["price"], m["sale_condition_flags"]))
        elif t == "T":
            self.trades.append((m["trade_id"], m["size"], m["price"], m["sale_condition_flags"]))
        elif t == "C":
            for oid in [k for k, o in self.orders.items() if o[0] == sym]:
                self._take(oid, self.orders[oid][2])

    def book(self) -> Levels:
        return {k: v for k, v in self.levels.items() if v}

    def top(self, sym: str) -> tuple[int, int, int, int]:
        return _top(self.levels, sym)


class LevelBooks:
    """DEEP replayed: Price Level Updates held until the one with the
    event-complete flag, then applied together (size 0 removes a level)."""

    def __init__(self) -> None:
        self.levels: Levels = {}
        self.pending: list[dict] = []
        self.trades: list[tuple[int, int, int, int]] = []

    def on(self, m: dict) -> None:
        t = m["message_type"]
        if t == "T":
            self.trades.append((m["trade_id"], m["size"], m["price"], m["sale_condition_flags"]))
        if t not in "85":
            return
        self.pending.append(m)
        if not m["event_flags"] & 1:
            return
        for u in self.pending:
            lv = self.levels.setdefault((u["symbol"], u["message_type"]), {})
            lv[u["price"]] = u["size"]
            if not u["size"]:
                del lv[u["price"]]
        self.pending = []

    def book(self) -> Levels:
        return {k: v for k, v in self.levels.items() if v}

    def top(self, sym: str) -> tuple[int, int, int, int]:
        return _top(self.levels, sym)


class TopBooks:
    """TOPS replayed: each symbol's last Quote Update (a side with size 0 is empty)."""

    def __init__(self) -> None:
        self.quotes: dict[str, tuple[int, int, int, int]] = {}
        self.trades: list[tuple[int, int, int, int]] = []

    def on(self, m: dict) -> None:
        if m["message_type"] == "T":
            self.trades.append((m["trade_id"], m["size"], m["price"], m["sale_condition_flags"]))
        if m["message_type"] != "Q":
            return
        bs, bp, ap, as_ = m["bid_size"], m["bid_price"], m["ask_price"], m["ask_size"]
        self.quotes[m["symbol"]] = (bs if bp else 0, bp if bs else 0, ap if as_ else 0, as_ if ap else 0)

    def book(self) -> Levels:
        out: Levels = {}
        for sym, (bs, bp, ap, as_) in self.quotes.items():
            if bs:
                out[(sym, "8")] = {bp: bs}
            if as_:
                out[(sym, "5")] = {ap: as_}
        return out

    def top(self, sym: str) -> tuple[int, int, int, int]:
        return self.quotes.get(sym, (0, 0, 0, 0))


#: Reference books per feed name (as the generator names feeds).
REFERENCE = {"deep+": OrderBooks, "deep": LevelBooks, "tops": TopBooks}
