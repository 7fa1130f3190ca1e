/* See rxfeed/bytesource.h. */
#include "rxfeed/bytesource.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* The file got shorter than it was at open: say so, with both sizes. */
static void report_shrink(rxf_src *src) {
    struct stat st;
    unsigned long long now = fstat(src->fd, &st) == 0 ? (unsigned long long)st.st_size
                                                       : (unsigned long long)src->raw_read;
    set_error(src, "%s: capture shrank from %llu to %llu bytes during replay", src->name,
              (unsigned long long)src->size, now);
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

int rxf_src_open_fd(rxf_src *src, int fd, const char *name, const uint8_t *prefix, size_t prefix_len,
                    size_t window) {
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

int rxf_src_open(rxf_src *src, const char *path, size_t window) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        memset(src, 0, sizeof(*src));
        src->fd = -1;
        set_error(src, "%s: %s", path, strerror(errno));
        return -1;
    }
    return rxf_src_open_fd(src, fd, path, NULL, 0, window);
}

void rxf_src_close(rxf_src *src) {
    if (src->zs_live) inflateEnd(&src->zs);
    src->zs_live = 0;
    free(src->win);
    free(src->in);
    src->win = src->in = NULL;
    if (src->fd >= 0) close(src->fd);
    src->fd = -1;
}

const uint8_t *rxf_src_peek(rxf_src *src, size_t want, size_t *avail, int may_refill) {
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
    if (src->gzip) *done = src->raw_read - src->zs.avail_in;
    else *done = src->raw_read - (src->win_end - src->win_start);
}
