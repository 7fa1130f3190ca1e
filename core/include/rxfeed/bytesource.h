/*
 * A forward-only byte source over a file, a pipe or a FIFO: bytes are read()
 * into a bounded window (plain data) or inflated into it (gzip, possibly
 * multi-member). Used by the capture-file backends.
 *
 * A pipe is polled (10 ms) before each read(), so a stalled writer never
 * blocks the run loop past a stop request.
 *
 * A plain (not gzip) regular file is mapped (mmap) when the caller allows
 * it: peek hands out pointers into the mapping, no copy. Before the read
 * position enters a new stretch of the mapping (RXF_SRC_MAP_STEP bytes) the
 * file's size is checked again (fstat) and the stretch's pages are populated
 * (MADV_POPULATE_READ, which fails instead of faulting past the end). A file
 * cut under a running replay therefore gives the same clear error as the
 * read() path ("capture shrank from X to Y bytes during replay") after the
 * bytes still there. Residual risk: a cut that lands after that check, while
 * the caller is still reading pointers it was handed, makes the kernel raise
 * SIGBUS; a SIGBUS handler (installed at the first mapped open, chaining to
 * the one it replaces for faults outside our mappings) maps zero pages over
 * the rest of that mapping, so the faulting read sees zeros instead of
 * killing the process, and the next peek reports the error ("... pages past
 * the cut were read as zeros"). Those zeros may have reached the consumer.
 * Everything else (pipes, FIFOs, gzip, or map == 0) is read() into a
 * bounded window; a regular file is read up to its size at open.
 *
 * Damage is reported after everything before it has been handed out: the
 * window keeps what was read or inflated, and src->error is set only when a
 * peek cannot be satisfied any more. A truncated or corrupt gzip member is an
 * error; bytes after a complete member that do not start a good member are
 * counted in gz_trailing (a warning, not an error).
 *
 * Pointers returned by rxf_src_peek() stay valid until the next call that
 * may refill (peek with may_refill != 0) or rxf_src_rewind() (a mapped
 * source keeps them valid until close; callers must not rely on that).
 */
#ifndef RXFEED_BYTESOURCE_H
#define RXFEED_BYTESOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

#define RXF_SRC_MAP_STEP (1u << 20) /* a mapped file is checked and populated this far ahead */

typedef struct rxf_src {
    int fd;
    int seekable;         /* a regular file: its size is known, rewind works */
    uint64_t size;        /* regular file: bytes at open (no more are read)  */
    uint64_t raw_read;    /* bytes read from fd (compressed for gzip)        */
    int raw_eof;          /* fd has nothing more                             */
    int gzip;
    int ended;            /* nothing more will come into the window          */
    /* gzip only */
    z_stream zs;
    int zs_live;
    int between;          /* a member just ended; the next may start         */
    uint8_t *in;          /* compressed input read from fd                   */
    size_t in_cap;
    uint64_t gz_members;  /* complete members inflated                       */
    uint64_t gz_trailing; /* bytes after the last complete member (ignored)  */
    int gz_trailing_partial; /* a pipe: at least gz_trailing (the rest unread) */
    /* the window: bytes [win_start, win_end) are valid */
    uint8_t *win;
    size_t win_cap, win_start, win_end;
    uint64_t offset;      /* bytes consumed from the (uncompressed) stream   */
    /* a mapped regular file (map != NULL): bytes [0, map_ok) are checked */
    const uint8_t *map;
    uint64_t map_len;     /* the size at open, all mapped                    */
    uint64_t map_ok;      /* checked to be in the file (fstat) and populated */
    int map_slot;         /* index in the SIGBUS handler's table             */
    uint64_t map_pf;      /* prefetched (software, every line) up to here    */
    char name[96];
    char error[224];
} rxf_src;

/* 0 on success, -1 with src->error set. window: window size in bytes (the
   read() path). map: map a plain regular file instead of reading it. */
int rxf_src_open(rxf_src *src, const char *path, size_t window, int map);
/* The same over an open fd (ownership passes to src, even on failure).
   prefix: bytes already read from fd (e.g. to detect the format), placed
   before what fd still holds. name: for messages. */
int rxf_src_open_fd(rxf_src *src, int fd, const char *name, const uint8_t *prefix, size_t prefix_len,
                    size_t window, int map);
/* 1 when the source hands out pointers into a mapping of the file. */
int rxf_src_mapped(const rxf_src *src);
void rxf_src_close(rxf_src *src);
/* Pointer to >= want bytes at the read position, or NULL with *avail set to
   what is there (less than want: end of data, a refill was not allowed, a
   pipe has nothing more yet or a signal came - see rxf_src_ended). On an error
   returns NULL and sets src->error. */
const uint8_t *rxf_src_peek(rxf_src *src, size_t want, size_t *avail, int may_refill);
/* Block (polling, for a pipe) until want bytes are in the window or the data
   ends: for headers read at open. -1 with src->error on an error or a signal
   (so that Ctrl-C at open is not lost). The run loop never waits: peek
   returns short when a pipe has nothing yet. */
int rxf_src_wait(rxf_src *src, size_t want);
void rxf_src_advance(rxf_src *src, size_t n);
/* Back to the start (a regular file only; -1 with src->error otherwise). */
int rxf_src_rewind(rxf_src *src);
/* How far through the file (compressed bytes for gzip), for progress bars;
   total is 0 for a pipe. */
void rxf_src_progress(const rxf_src *src, uint64_t *done, uint64_t *total);
/* 1 when nothing more will arrive in the window (what is there is all). */
int rxf_src_ended(const rxf_src *src);

#endif
