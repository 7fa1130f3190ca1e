"""Re-request scheduling (core/include/rxfeed/rerequest.h) through a cffi
harness: holes merged and split into requests, answered ranges dropped,
timeouts with backoff, in-flight limit, giving up; and end to end, request
packets built by MoldUDP64's rxf_mold_request and sent over UDP to rxfeed's
own re-request server, whose answers are exactly the messages asked for."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest

from .c_harness import build_harness

ROOT = Path(__file__).resolve().parents[1]

CDEF = """
typedef struct rr_harness rr_harness;
rr_harness *h_new(uint64_t max_count, uint64_t timeout_ns, uint32_t max_attempts, uint32_t max_in_flight,
                  int fd, const char *session);
void h_free(rr_harness *h);
void h_want(rr_harness *h, uint64_t first, uint64_t count);
void h_filled(rr_harness *h, uint64_t upto);
void h_answered(rr_harness *h, uint64_t first, uint64_t count);
void h_poll(rr_harness *h, uint64_t now);
void h_fail_sends(rr_harness *h, int on);
size_t h_sent(rr_harness *h, uint64_t **pairs);
uint32_t h_tracked(rr_harness *h);
void h_counters(rr_harness *h, uint64_t out[7]);
"""

SOURCE = r"""
#include <stdlib.h>
#include <sys/socket.h>
#include "rxfeed/rerequest.h"
#include "moldudp64.h"

typedef struct rr_harness {
    rxf_rr c;
    int fd, fail;
    char session[10];
    uint64_t *sent; size_t n_sent, cap_sent;
} rr_harness;

static int h_send(void *user, uint64_t first, uint64_t count) {
    rr_harness *h = user;
    if (h->fail) return -1;
    if (h->n_sent + 2 > h->cap_sent) {
        h->cap_sent = h->cap_sent ? 2 * h->cap_sent : 256;
        h->sent = realloc(h->sent, h->cap_sent * sizeof(uint64_t));
    }
    h->sent[h->n_sent++] = first;
    h->sent[h->n_sent++] = count;
    if (h->fd >= 0) {
        uint8_t req[RXF_MOLD_HEADER_LEN];
        uint32_t n = rxf_mold_request(req, h->session, first, (uint16_t)(count > 0xFFFE ? 0xFFFE : count));
        if (send(h->fd, req, n, 0) != (ssize_t)n) return -1;
    }
    return 0;
}

rr_harness *h_new(uint64_t max_count, uint64_t timeout_ns, uint32_t max_attempts, uint32_t max_in_flight,
                  int fd, const char *session) {
    rr_harness *h = calloc(1, sizeof *h);
    h->fd = fd;
    memcpy(h->session, session, 10);
    rxf_rr_init(&h->c, h_send, h, max_count, timeout_ns, max_attempts, max_in_flight);
    return h;
}
void h_free(rr_harness *h) { free(h->sent); free(h); }
void h_want(rr_harness *h, uint64_t first, uint64_t count) { rxf_rr_want(&h->c, first, count); }
void h_filled(rr_harness *h, uint64_t upto) { rxf_rr_filled(&h->c, upto); }
void h_answered(rr_harness *h, uint64_t first, uint64_t count) { rxf_rr_answered(&h->c, first, count); }
void h_poll(rr_harness *h, uint64_t now) { rxf_rr_poll(&h->c, now); }
void h_fail_sends(rr_harness *h, int on) { h->fail = on; }
size_t h_sent(rr_harness *h, uint64_t **pairs) { *pairs = h->sent; return h->n_sent / 2; }
uint32_t h_tracked(rr_harness *h) { return h->c.n; }
void h_counters(rr_harness *h, uint64_t out[7]) {
    rxf_rr *c = &h->c;
    uint64_t v[7] = {c->requests_sent, c->messages_requested, c->retries, c->given_up_ranges,
                     c->given_up_messages, c->dropped_wants, c->send_errors};
    memcpy(out, v, sizeof v);
}
"""

COUNTERS = ("requests_sent", "messages_requested", "retries", "given_up_ranges", "given_up_messages",
            "dropped_wants", "send_errors")


@pytest.fixture(scope="module")
def mod():
    return build_harness("_rxf_rr_harness", CDEF, SOURCE, [str(ROOT / "protocols/moldudp64")])


class Client:
    def __init__(self, mod, max_count=100, timeout_ns=1000, max_attempts=3, max_in_flight=4, fd=-1,
                 session=b"RXFEED0001"):
        self.mod, self.lib, self.ffi = mod, mod.lib, mod.ffi
        self.h = self.lib.h_new(max_count, timeout_ns, max_attempts, max_in_flight, fd, session)

    def sent(self):
        p = self.ffi.new("uint64_t **")
        n = self.lib.h_sent(self.h, p)
        flat = list(self.ffi.unpack(p[0], 2 * n)) if n else []
        return [tuple(flat[i:i + 2]) for i in range(0, len(flat), 2)]

    def counters(self):
        out = self.ffi.new("uint64_t[7]")
        self.lib.h_counters(self.h, out)
        return dict(zip(COUNTERS, out))

    def __getattr__(self, name):
        fn = getattr(self.lib, f"h_{name}")
        return lambda *a: fn(self.h, *a)


def test_a_hole_is_split_into_requests_of_at_most_max_count(mod):
    c = Client(mod, max_count=100, max_in_flight=10)
    c.want(1, 250)
    c.poll(10)
    assert c.sent() == [(1, 100), (101, 100), (201, 50)] and c.counters()["messages_requested"] == 250


def test_overlapping_holes_are_asked_for_once(mod):
    c = Client(mod, max_count=1000, max_in_flight=10)
    c.want(10, 10)        # 10..19
    c.want(5, 30)         # 5..34: only 5..9 and 20..34 are new
    c.want(12, 3)         # nothing new
    c.poll(1)
    assert sorted(c.sent()) == [(5, 5), (10, 10), (20, 15)] and c.tracked() == 3


def test_what_arrived_is_not_asked_for_again(mod):
    c = Client(mod, max_count=1000, timeout_ns=100)
    c.want(1, 10)
    c.poll(1)
    c.filled(6)           # 1..5 arrived (one full answer packet): the rest is asked for at once
    c.poll(2)
    assert c.sent() == [(1, 10), (6, 5)] and c.counters()["retries"] == 0
    c.poll(50)            # within the timeout: nothing
    assert len(c.sent()) == 2
    c.filled(11)
    c.poll(10_000)
    assert c.tracked() == 0 and len(c.sent()) == 2


def test_timeouts_back_off_and_a_range_is_given_up_after_its_attempts(mod):
    c = Client(mod, timeout_ns=100, max_attempts=3)
    c.want(1, 5)
    times = []
    for now in range(1, 2000, 10):
        before = len(c.sent())
        c.poll(now)
        if len(c.sent()) > before:
            times.append(now)
    assert times == [1, 101, 301]   # timeout 100, then 200, then 400: gave up at 701
    k = c.counters()
    assert k["given_up_ranges"] == 1 and k["given_up_messages"] == 5
    # given up: never asked for again (not even when wanted again), but
    # tracked until settled, so a late answer is still taken
    c.want(1, 5)
    c.poll(10_000)
    assert len(c.sent()) == 3 and c.tracked() == 1 and c.counters()["given_up_ranges"] == 1
    c.filled(6)
    assert c.tracked() == 0


def test_at_most_max_in_flight_requests_unanswered(mod):
    c = Client(mod, max_count=10, timeout_ns=1_000, max_in_flight=2)
    c.want(1, 50)         # five requests
    c.poll(1)
    assert len(c.sent()) == 2
    c.filled(21)          # the first two answered
    c.poll(2)
    assert c.sent()[2:] == [(21, 10), (31, 10)]


def test_a_failing_socket_is_counted_and_retried(mod):
    c = Client(mod)
    c.want(1, 5)
    c.fail_sends(1)
    c.poll(1)
    assert c.sent() == [] and c.counters()["send_errors"] == 1
    c.fail_sends(0)
    c.poll(2)
    assert c.sent() == [(1, 5)]


def test_tracked_ranges_are_bounded(mod):
    c = Client(mod, max_count=1)
    c.want(1, 1000)       # 1,000 one-message requests wanted; 256 tracked
    assert c.tracked() == 256 and c.counters()["dropped_wants"] == 1


def test_requests_over_udp_are_answered_by_rxfeeds_server_with_exactly_the_missing_messages(mod):
    from rxfeed.tools.rerequest import RerequestServer

    messages = [b"S" + struct.pack(">I", i) + bytes(i % 13) for i in range(1, 501)]
    with RerequestServer(messages, session="RXFEED0001") as server:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.connect(server.address)
        sock.settimeout(2.0)
        c = Client(mod, max_count=40, timeout_ns=10**9, max_in_flight=8, fd=sock.fileno())
        for first, count in ((20, 30), (200, 100), (490, 11)):  # three holes, as a sequencer would see them
            c.want(first, count)
        got: dict[int, bytes] = {}
        for _ in range(20):
            c.poll(1)
            try:
                while True:
                    data = sock.recv(2048)
                    seq, count = struct.unpack_from(">QH", data, 10)
                    assert data[:10] == b"RXFEED0001"
                    pos = 20
                    for i in range(count):
                        (n,) = struct.unpack_from(">H", data, pos)
                        got[seq + i] = data[pos + 2:pos + 2 + n]
                        pos += 2 + n
            except socket.timeout:
                pass
            done = 1
            while done in got or not (20 <= done < 50 or 200 <= done < 300 or 490 <= done <= 500):
                done += 1
                if done > 500:
                    break
            c.filled(done if done <= 500 else 501)
            if c.tracked() == 0:
                break
        sock.close()
        stats = server.stats()
    wanted = [*range(20, 50), *range(200, 300), *range(490, 501)]
    assert sorted(got) == wanted and all(got[s] == messages[s - 1] for s in wanted)
    assert c.counters()["given_up_ranges"] == 0 and stats["requests"] >= 5



def test_an_answer_for_a_later_hole_trims_it_and_asks_for_its_rest_at_once(mod):
    """Holes 1..10 and 50..99 asked for; the server's full packet answers
    50..69 while 1..10 is still open: 70..99 is asked for now, not after a
    timeout (which would cost an attempt)."""
    c = Client(mod, max_count=1000, timeout_ns=100, max_in_flight=10)
    c.want(1, 10)
    c.want(50, 50)
    c.poll(1)
    c.answered(50, 20)
    c.poll(2)
    assert c.sent() == [(1, 10), (50, 50), (70, 30)] and c.counters()["retries"] == 0
    c.answered(70, 30)
    assert c.tracked() == 1
