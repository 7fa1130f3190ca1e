"""A plain-Python L3 book, written independently of book.c, as the reference
the C books are checked against. Dicts and lists; no attempt at speed."""

from __future__ import annotations


class RefBooks:
    def __init__(self):
        self.orders = {}            # ref -> [locate, side, price, shares]
        self.levels = {}            # (locate, side) -> {price: [ref, ...]}
        self.names = {}
        self.bbo_seq = []           # (timestamp, locate, bid_px, bid_sz, ask_px, ask_sz) on change
        self.last = {}
        self.unknown = 0

    def _add(self, loc, ref, side, shares, price):
        if side not in ("B", "S") or shares == 0 or ref in self.orders:
            return          # refused and counted by the C books (invalid_side, zero_shares_add, duplicate_add)
        self.orders[ref] = [loc, side, price, shares]
        self.levels.setdefault((loc, side), {}).setdefault(price, []).append(ref)

    def _reduce(self, ref, k):
        o = self.orders[ref]
        o[3] -= min(k, o[3])
        if o[3] == 0:
            lv = self.levels[(o[0], o[1])]
            lv[o[2]].remove(ref)
            if not lv[o[2]]:
                del lv[o[2]]
            del self.orders[ref]
        return o[0]

    def top(self, loc, side):
        lv = self.levels.get((loc, side), {})
        if not lv:
            return 0, 0
        p = max(lv) if side == "B" else min(lv)
        return p, sum(self.orders[r][3] for r in lv[p])

    def depth(self, loc, side):
        lv = self.levels.get((loc, side), {})
        prices = sorted(lv, reverse=(side == "B"))
        return [(p, sum(self.orders[r][3] for r in lv[p]), len(lv[p])) for p in prices]

    def on(self, m):
        t = m.type
        loc = m.stock_locate
        if t in "AF":
            self._add(loc, m.order_reference_number, m.buy_sell_indicator, m.shares, m.price)
        elif t in "ECXD":
            ref = m.order_reference_number
            if ref not in self.orders:
                self.unknown += 1
                return
            k = {"E": getattr(m, "executed_shares", 0), "C": getattr(m, "executed_shares", 0),
                 "X": getattr(m, "cancelled_shares", 0), "D": 1 << 40}[t]
            loc = self._reduce(ref, k)
        elif t == "U":
            ref = m.original_order_reference_number
            if ref not in self.orders:
                self.unknown += 1
                return
            loc, side = self.orders[ref][0], self.orders[ref][1]
            self._reduce(ref, 1 << 40)
            self._add(loc, m.new_order_reference_number, side, m.shares, m.price)
        elif t == "R":
            self.names[loc] = m.stock
            return
        else:
            return
        q = self.top(loc, "B") + self.top(loc, "S")
        if self.last.get(loc, (0, 0, 0, 0)) != q:
            self.last[loc] = q
            self.bbo_seq.append((m.timestamp, loc, q[0], q[1], q[2], q[3]))
