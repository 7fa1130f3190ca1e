/* See rxfeed/bytesource.h. */
#include "rxfeed/bytesource.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define IN_CAP (1u << 18)
#define MIN_WINDOW (1u << 16)
#define READ_MAX (1u << 18)  /* per read(): the bytes are still in cache when parsed */

#define PIPE_WAIT_MS 10      /* a pipe with nothing to read: the loop polls again (and sees a stop) */

enum { RD_ERR = -1, RD_AGAIN = -2, RD_INTR = -3 };

static void set_error(rxf_src *src, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(src->error, sizeof(src->error), fmt, ap);
    va_end(ap);
}

/* The file's size now (fstat), or `fallback` when it cannot be read. */
static unsigned long long size_now(const rxf_src *src, unsigned long long fallback) {
    struct stat st;
    return fstat(src->fd, &st) == 0 ? (unsigned long long)st.st_size : fallback;
}

/* The file got shorter than it was at open: say so, with both sizes (and `tail`). */
static void report_shrink_to(rxf_src *src, unsigned long long now, const char *tail) {
    set_error(src, "%s: capture shrank from %llu to %llu bytes during replay%s", src->name,
              (unsigned long long)src->size, now, tail);
}

static void report_shrink(rxf_src *src) {
    report_shrink_to(src, size_now(src, (unsigned long long)src->raw_read), "");
}

/* read() up to n bytes (never past a regular file's size at open).
   Returns bytes read, 0 at the end, RD_AGAIN (a pipe has nothing yet),
   RD_INTR (a signal), RD_ERR. */
static long raw_read(rxf_src *src, uint8_t *dst, size_t n) {
    if (src->raw_eof) return 0;
    if (src->seekable) {
        uint64_t left = src->size - src->raw_read;
        if (left == 0) { src->raw_eof = 1; return 0; }
        if (n > left) n = (size_t)left;
    }
    if (!src->seekable) {  /* never block on a stalled writer: a stop must be seen */
        struct pollfd pfd = {.fd = src->fd, .events = POLLIN};
        int pr = poll(&pfd, 1, PIPE_WAIT_MS);
        if (pr == 0) return RD_AGAIN;
        if (pr < 0) return errno == EINTR ? RD_INTR : RD_AGAIN;
    }
    ssize_t r = read(src->fd, dst, n);
    if (r > 0) { src->raw_read += (uint64_t)r; return (long)r; }
    if (r == 0) {
        src->raw_eof = 1;
        if (src->seekable) { report_shrink(src); return RD_ERR; }
        return 0;
    }
    if (errno == EINTR) return RD_INTR;
    if (errno == EAGAIN) return RD_AGAIN;
    set_error(src, "%s: read: %s", src->name, strerror(errno));
    src->raw_eof = 1;
    return RD_ERR;
}

/* Bytes still unread of the input after the current point: regular files
   from the size; for a pipe only what is buffered - the rest is not read
   (a writer that keeps it open must not hold the run past its limits), and
   gz_trailing_partial says so. */
static uint64_t rest_of_input(rxf_src *src) {
    uint64_t n = src->zs.avail_in;
    src->zs.avail_in = 0;
    if (src->seekable) { n += src->size - src->raw_read; src->raw_read = src->size; }
    else src->gz_trailing_partial = 1;
    src->raw_eof = 1;
    return n;
}

/* A fresh inflate state over the input already buffered (next_in/avail_in kept). */
static int start_inflate(rxf_src *src) {
    z_const Bytef *next_in = src->zs.next_in;
    uInt avail_in = src->zs.avail_in;
    memset(&src->zs, 0, sizeof(src->zs));
    src->zs.next_in = next_in;
    src->zs.avail_in = avail_in;
    if (inflateInit2(&src->zs, 16 + MAX_WBITS) != Z_OK) {
        set_error(src, "zlib: inflateInit2 failed");
        return -1;
    }
    src->zs_live = 1;
    src->between = 0;
    src->gz_members = src->gz_trailing = 0;
    src->gz_trailing_partial = 0;
    return 0;
}

/* Everything from `already` bytes back is not a good member: ignore it, count it. */
static int trailing(rxf_src *src, uint64_t already) {
    src->gz_trailing = already + rest_of_input(src);
    src->ended = 1;
    return 0;
}

/* A member could not be inflated to its end. Right after a complete member,
   before any output, that is trailing garbage; otherwise data was lost. */
static int member_damaged(rxf_src *src, int truncated) {
    if (src->zs.total_out == 0 && src->gz_members > 0) return trailing(src, src->zs.total_in);
    unsigned long long at = (unsigned long long)(src->raw_read - src->zs.avail_in);
    if (truncated)
        set_error(src, "%s: gzip: truncated (the file ends inside a compressed member, after %llu compressed bytes)",
                  src->name, at);
    else
        set_error(src, "%s: gzip: corrupt data near compressed byte %llu (%s)", src->name, at,
                  src->zs.msg ? src->zs.msg : "zlib error");
    src->ended = 1;
    return -1;
}

/* After a member: another starts (1f 8b), the input ends, or trailing bytes. */
static int next_member(rxf_src *src) {
    while (src->zs.avail_in < 2 && !src->raw_eof) {
        if (src->zs.avail_in) memmove(src->in, src->zs.next_in, src->zs.avail_in);
        src->zs.next_in = src->in;
        long r = raw_read(src, src->in + src->zs.avail_in, src->in_cap - src->zs.avail_in);
        if (r == RD_AGAIN || r == RD_INTR) return r == RD_AGAIN ? 1 : 2;
        if (r == RD_ERR) { src->ended = 1; return -1; }
        src->zs.avail_in += (uInt)r;
    }
    if (src->zs.avail_in == 0) { src->ended = 1; return 0; }
    if (src->zs.avail_in >= 2 && src->zs.next_in[0] == 0x1f && src->zs.next_in[1] == 0x8b) {
        inflateReset(&src->zs);
        src->between = 0;
        return 0;
    }
    return trailing(src, 0);
}

/* One inflate call into the window. 0: progress or state change; 1: nothing to read yet;
   2: a signal; -1: error. */
static int inflate_step(rxf_src *src) {
    if (src->between) return next_member(src);
    if (src->zs.avail_in == 0 && !src->raw_eof) {
        long r = raw_read(src, src->in, src->in_cap);
        if (r == RD_AGAIN || r == RD_INTR) return r == RD_AGAIN ? 1 : 2;
        if (r == RD_ERR) { src->ended = 1; return -1; }
        src->zs.next_in = src->in;
        src->zs.avail_in = (uInt)r;
    }
    src->zs.next_out = src->win + src->win_end;
    src->zs.avail_out = (uInt)(src->win_cap - src->win_end);
    int rc = inflate(&src->zs, Z_NO_FLUSH);
    src->win_end = src->win_cap - src->zs.avail_out;
    if (rc == Z_STREAM_END) { src->gz_members++; src->between = 1; return 0; }
    if (rc == Z_OK) return 0;
    if (rc == Z_BUF_ERROR && src->zs.avail_in == 0 && !src->raw_eof) return 0; /* more input next step */
    return member_damaged(src, rc == Z_BUF_ERROR);
}

/* One read() into the window. 0: progress or end; 1: nothing to read yet; 2: a signal; -1: error. */
static int plain_step(rxf_src *src) {
    size_t room = src->win_cap - src->win_end;
    long r = raw_read(src, src->win + src->win_end, room < READ_MAX ? room : READ_MAX);
    if (r == RD_AGAIN || r == RD_INTR) return r == RD_AGAIN ? 1 : 2;
    if (r <= 0) { src->ended = 1; return r < 0 ? -1 : 0; }
    src->win_end += (size_t)r;
    return 0;
}

/* Slide unread bytes to the window's start, then fill until `want` bytes are
   there, the data ends, or (wait == 0) a pipe has nothing yet or a signal
   came (the loop polls again). wait != 0: keep waiting for a pipe; a signal
   is an error. Returns the last step's code. */
static int refill(rxf_src *src, size_t want, int wait) {
    size_t keep = src->win_end - src->win_start;
    if (src->win_start > 0) {
        memmove(src->win, src->win + src->win_start, keep);
        src->win_start = 0;
        src->win_end = keep;
    }
    int rc = 0;
    while (src->win_end < want && !src->ended) {
        rc = src->gzip ? inflate_step(src) : plain_step(src);
        if (rc == 1 && wait) continue;
        if (rc == 2 && wait) set_error(src, "%s: interrupted while waiting for data", src->name);
        if (rc != 0) break;
    }
    return rc;
}

/* Put the first bytes (prefix, then reads) in the window and tell gzip from plain. */
static int sniff(rxf_src *src, const uint8_t *prefix, size_t prefix_len) {
    if (prefix_len) memcpy(src->win, prefix, prefix_len);
    src->win_end = prefix_len;
    while (src->win_end < 2 && !src->raw_eof) { /* a small read: a pipe keeps the rest */
        size_t n = src->win_cap - src->win_end < IN_CAP ? src->win_cap - src->win_end : IN_CAP;
        long r = raw_read(src, src->win + src->win_end, n);
        if (r == RD_ERR) return -1;
        if (r == RD_INTR) { set_error(src, "%s: interrupted while waiting for the first bytes", src->name); return -1; }
        if (r > 0) src->win_end += (size_t)r;
    }
    src->gzip = src->win_end >= 2 && src->win[0] == 0x1f && src->win[1] == 0x8b;
    if (!src->gzip) return 0;
    src->in_cap = src->win_end > IN_CAP ? src->win_end : IN_CAP;
    src->in = malloc(src->in_cap);
    if (!src->in) { set_error(src, "out of memory for gzip input"); return -1; }
    memcpy(src->in, src->win, src->win_end);
    src->zs.next_in = src->in;
    src->zs.avail_in = (uInt)src->win_end;
    src->win_end = 0;
    return 0;
}


/* ---- the mapped path (plain regular files) -------------------------------
   The SIGBUS handler's table of live mappings. This file is compiled into
   each backend module, so several copies of the table and the handler may
   exist; each handles faults in its own mappings and chains to the handler
   it replaced for the rest. */

#define MAP_SLOTS 64
#define MAP_PREFETCH (16u << 10) /* peek keeps every line this far ahead prefetched (hardware prefetch stops at pages) */
#define MAP_PREFETCH_STEP 2048   /* at most this much more per peek */

static struct {
    volatile uintptr_t base;      /* 0: free; 1: claimed, being mapped */
    volatile size_t len;
    volatile sig_atomic_t faulted; /* a cut was papered over with zero pages */
} map_slots[MAP_SLOTS];
static struct sigaction prev_sigbus;
static volatile sig_atomic_t chaining;
static uintptr_t page_size;

/* A SIGBUS that is not ours: to the handler we replaced, or the default. */
static void chain_sigbus(int sig, siginfo_t *si, void *uc) {
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    if (chaining || (!(prev_sigbus.sa_flags & SA_SIGINFO) &&
                     (prev_sigbus.sa_handler == SIG_DFL || prev_sigbus.sa_handler == SIG_IGN))) {
        sigaction(SIGBUS, &dfl, NULL); /* a fault re-runs and kills as usual */
        if (si->si_code <= 0) raise(sig); /* sent, not a fault: deliver it */
        return;
    }
    chaining = 1;  /* two copies of this handler chaining to each other end here */
    if (prev_sigbus.sa_flags & SA_SIGINFO) prev_sigbus.sa_sigaction(sig, si, uc);
    else prev_sigbus.sa_handler(sig);
    chaining = 0;
}

/* A fault inside one of our mappings (the file was cut under us): zero
   pages over the rest of that mapping, so the read goes on; the source
   reports the cut at its next peek. mmap is a plain system call on Linux. */
static void on_sigbus(int sig, siginfo_t *si, void *uc) {
    uintptr_t a = (uintptr_t)si->si_addr;
    for (int i = 0; si->si_code > 0 && i < MAP_SLOTS; i++) {
        uintptr_t base = map_slots[i].base, len = map_slots[i].len;
        if (base <= 1 || a < base || a >= base + len) continue; /* 1: claimed, not mapped yet */
        uintptr_t page = a & ~(page_size - 1);
        void *r = mmap((void *)page, base + len - page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (r == MAP_FAILED) break;
        map_slots[i].faulted = 1;
        return;
    }
    chain_sigbus(sig, si, uc);
}

/* Ours on top (again, if something replaced it since: e.g. faulthandler). */
static void install_sigbus(void) {
    struct sigaction cur, sa;
    if (sigaction(SIGBUS, NULL, &cur) != 0) return;
    if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_sigbus) return;
    prev_sigbus = cur;
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
}

static int claim_slot(void) {
    for (int i = 0; i < MAP_SLOTS; i++)
        if (__sync_bool_compare_and_swap(&map_slots[i].base, 0, (uintptr_t)1)) return i;
    return -1;
}

/* The cut found by the SIGBUS handler: after pages were handed out. */
static void report_fault(rxf_src *src) {
    report_shrink_to(src, size_now(src, 0), " (pages past the cut were read as zeros)");
    src->ended = 1;
}

/* The file is shorter than the mapping: bytes up to its size are still
   handed out, then the error stands. */
static void map_cut(rxf_src *src, uint64_t now) {
    if (now > src->map_ok && now < src->map_len) src->map_ok = now;
    src->ended = 1;
    report_shrink_to(src, (unsigned long long)now, "");
}

/* Check the file still holds [map_ok, target) and populate those pages
   (MADV_POPULATE_READ fails with EFAULT past the end instead of faulting). */
static void map_extend(rxf_src *src, uint64_t need) {
    uint64_t target = src->map_ok + RXF_SRC_MAP_STEP;
    if (target < need) target = need;
    if (target > src->map_len) target = src->map_len;
    struct stat st;
    if (fstat(src->fd, &st) != 0) {
        set_error(src, "%s: fstat: %s", src->name, strerror(errno));
        src->ended = 1;
        return;
    }
    if ((uint64_t)st.st_size < target) { map_cut(src, (uint64_t)st.st_size); return; }
#ifdef MADV_POPULATE_READ
    uintptr_t from = (uintptr_t)(src->map + src->map_ok) & ~(page_size - 1);
    if (madvise((void *)from, (uintptr_t)(src->map + target) - from, MADV_POPULATE_READ) != 0 && errno == EFAULT) {
        map_cut(src, fstat(src->fd, &st) == 0 ? (uint64_t)st.st_size : src->map_ok);
        return;
    }
#endif
    src->map_ok = target;
    if (src->map_ok == src->map_len) src->ended = 1;
}

/* Keep the lines ahead of the reader on their way to the cache: a mapped
   page is cold (a read() window is warm from the copy), and a reader that
   touches one header per record would wait for each in turn. */
static void map_prefetch(rxf_src *src, uint64_t from) {
    uint64_t to = from + MAP_PREFETCH;
    if (to > src->map_ok) to = src->map_ok;
    if (src->map_pf < from) src->map_pf = from & ~(uint64_t)63;
    if (to > src->map_pf + MAP_PREFETCH_STEP) to = src->map_pf + MAP_PREFETCH_STEP;
    for (; src->map_pf < to; src->map_pf += 64) __builtin_prefetch(src->map + src->map_pf);
}

static const uint8_t *map_peek(rxf_src *src, size_t want, size_t *avail) {
    if (map_slots[src->map_slot].faulted) {
        if (!src->error[0]) report_fault(src);
        *avail = 0;
        return NULL;
    }
    uint64_t have = src->map_ok - src->offset;
    if (have < want && !src->ended) {
        map_extend(src, src->offset + want);
        have = src->map_ok - src->offset;
    }
    *avail = (size_t)have;
    map_prefetch(src, src->offset + want);
    return have >= want ? src->map + src->offset : NULL;
}

static void map_close(rxf_src *src) {
    map_slots[src->map_slot].base = 0;
    munmap((void *)src->map, src->map_len);
    src->map = NULL;
}

/* Map a plain regular file of st_size > 0 bytes. 0: mapped, or left to the
   read() path (no slot, mmap refused, gzip); -1: an error. */
static int map_open(rxf_src *src) {
    if (!page_size) page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
    int slot = claim_slot();
    if (slot < 0) return 0;
    void *p = mmap(NULL, (size_t)src->size, PROT_READ, MAP_SHARED, src->fd, 0);
    if (p == MAP_FAILED) { map_slots[slot].base = 0; return 0; }
    map_slots[slot].faulted = 0;
    map_slots[slot].len = (size_t)src->size;
    __sync_synchronize();
    map_slots[slot].base = (uintptr_t)p;
    install_sigbus();
    madvise(p, (size_t)src->size, MADV_SEQUENTIAL);
    src->map = p;
    src->map_len = src->size;
    src->map_slot = slot;
    size_t avail;
    const uint8_t *head = map_peek(src, 2, &avail);
    if (src->error[0]) return -1;
    if (head && head[0] == 0x1f && head[1] == 0x8b) { /* gzip: inflated through the window */
        map_close(src);
        src->map_ok = 0;
        src->ended = 0;
    }
    return 0;
}

int rxf_src_mapped(const rxf_src *src) { return src->map != NULL; }

int rxf_src_open_fd(rxf_src *src, int fd, const char *name, const uint8_t *prefix, size_t prefix_len,
                    size_t window, int map) {
    memset(src, 0, sizeof(*src));
    src->fd = fd;
    snprintf(src->name, sizeof(src->name), "%s", name);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        set_error(src, "%s: %s", name, strerror(errno));
        rxf_src_close(src);
        return -1;
    }
    src->seekable = S_ISREG(st.st_mode);
    src->size = src->seekable ? (uint64_t)st.st_size : 0;
    if (map && src->seekable && src->size > 0 && src->size <= SIZE_MAX) {
        if (map_open(src) != 0) {
            rxf_src_close(src);
            return -1;
        }
        if (src->map) return 0;
    }
    if (src->seekable && prefix_len) src->raw_read = prefix_len; /* already read from the start */
    src->win_cap = window < MIN_WINDOW ? MIN_WINDOW : window;
    if (src->win_cap < prefix_len) src->win_cap = prefix_len;
    src->win = malloc(src->win_cap);
    if (!src->win) {
        set_error(src, "out of memory for a %zu-byte window", src->win_cap);
        rxf_src_close(src);
        return -1;
    }
    if (sniff(src, prefix, prefix_len) != 0 || (src->gzip && start_inflate(src) != 0)) {
        rxf_src_close(src);
        return -1;
    }
    return 0;
}

int rxf_src_open(rxf_src *src, const char *path, size_t window, int map) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        memset(src, 0, sizeof(*src));
        src->fd = -1;
        set_error(src, "%s: %s", path, strerror(errno));
        return -1;
    }
    return rxf_src_open_fd(src, fd, path, NULL, 0, window, map);
}

void rxf_src_close(rxf_src *src) {
    if (src->map) map_close(src);
    if (src->zs_live) inflateEnd(&src->zs);
    src->zs_live = 0;
    free(src->win);
    free(src->in);
    src->win = src->in = NULL;
    if (src->fd >= 0) close(src->fd);
    src->fd = -1;
}

const uint8_t *rxf_src_peek(rxf_src *src, size_t want, size_t *avail, int may_refill) {
    if (src->map) return map_peek(src, want, avail); /* old pointers stay valid: always "refill" */
    size_t have = src->win_end - src->win_start;
    if (have < want && may_refill && !src->ended) {
        if (want > src->win_cap) {
            set_error(src, "record of %zu bytes exceeds the %zu-byte read window", want, src->win_cap);
            *avail = have;
            return NULL;
        }
        refill(src, want, 0);
        have = src->win_end - src->win_start;
    }
    *avail = have;
    return have >= want ? src->win + src->win_start : NULL;
}

int rxf_src_wait(rxf_src *src, size_t want) {
    if (src->map) {
        size_t avail;
        map_peek(src, want, &avail);
        return src->error[0] ? -1 : 0;
    }
    if (want > src->win_cap) {
        set_error(src, "%s: %zu bytes do not fit the %zu-byte read window", src->name, want, src->win_cap);
        return -1;
    }
    if (src->win_end - src->win_start < want && !src->ended && refill(src, want, 1) < 0) return -1;
    return src->error[0] ? -1 : 0;
}

void rxf_src_advance(rxf_src *src, size_t n) {
    src->win_start += n;
    src->offset += n;
}

int rxf_src_rewind(rxf_src *src) {
    if (!src->seekable) {
        set_error(src, "%s: cannot loop: a pipe or FIFO is read once (give a regular file)", src->name);
        return -1;
    }
    if (src->map) { /* checked again from the start: a cut since is found */
        src->offset = src->map_ok = src->map_pf = 0;
        src->ended = 0;
        src->error[0] = 0;
        return 0;
    }
    if (lseek(src->fd, 0, SEEK_SET) != 0) {
        set_error(src, "%s: lseek: %s", src->name, strerror(errno));
        return -1;
    }
    src->offset = src->raw_read = 0;
    src->raw_eof = src->ended = 0;
    src->win_start = src->win_end = 0;
    src->error[0] = 0;
    if (!src->gzip) return 0;
    inflateEnd(&src->zs);
    src->zs_live = 0;
    src->zs.avail_in = 0;
    return start_inflate(src);
}

int rxf_src_ended(const rxf_src *src) { return src->ended; }

void rxf_src_progress(const rxf_src *src, uint64_t *done, uint64_t *total) {
    *total = src->size;
    if (src->map) *done = src->offset;
    else if (src->gzip) *done = src->raw_read - src->zs.avail_in;
    else *done = src->raw_read - (src->win_end - src->win_start);
}
