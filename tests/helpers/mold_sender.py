"""Test helper: send a generated day as MoldUDP64 over UDP multicast at a fixed
rate (busy-wait pacing), then end the session. Bounded by count and time.

python -m tests.helpers.mold_sender --messages N --group G --port P --pps R --iface-ip A
Prints one JSON line: datagrams and messages sent, seconds.
"""

from __future__ import annotations

import argparse
import json
import socket
import struct
import time

from rxfeed.generator import DEFAULT_SESSION, generate_messages, moldudp64_datagrams


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=20000)
    ap.add_argument("--group", default="233.54.12.111")
    ap.add_argument("--port", type=int, default=26477)
    ap.add_argument("--pps", type=float, default=2000.0, help="datagrams per second; 0: as fast as possible")
    ap.add_argument("--iface-ip", required=True)
    ap.add_argument("--max-seconds", type=float, default=30.0)
    a = ap.parse_args()
    grams = [p for _, p in moldudp64_datagrams(generate_messages(a.messages, 4, 5), end_of_session=False)]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(a.iface_ip))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 4)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
    dest = (a.group, a.port)
    gap = 1.0 / a.pps if a.pps > 0 else 0.0
    t0 = time.perf_counter()
    due = t0
    sent = 0
    for g in grams:
        if gap:
            while time.perf_counter() < due:
                pass
            due += gap
        try:
            s.sendto(g, dest)
        except BlockingIOError:
            pass
        sent += 1
        if time.perf_counter() - t0 > a.max_seconds:
            break
    seq = 1 + sum(struct.unpack(">H", g[18:20])[0] for g in grams[:sent])
    for _ in range(5):  # end of session, repeated: a lost tail still shows up as a gap
        time.sleep(0.05)
        s.sendto(struct.pack(">10sQH", DEFAULT_SESSION, seq, 0xFFFF), dest)
    print(json.dumps({"datagrams": sent, "messages": seq - 1, "seconds": time.perf_counter() - t0}))


if __name__ == "__main__":
    main()
