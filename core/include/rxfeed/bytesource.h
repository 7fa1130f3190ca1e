/*
 * A forward-only byte source over a file: plain files are mmap'd whole (the
 * bytes handed out point into the mapping: zero copy); gzip files (possibly
 * multi-member) are inflated into a sliding window. Used by the pcap and
 * NASDAQ-file backends.
 *
 * Pointers returned by rxf_src_peek() stay valid until the next call that
 * may refill (peek with may_refill != 0) or rxf_src_rewind().
 */
#ifndef RXFEED_BYTESOURCE_H
#define RXFEED_BYTESOURCE_H

#include <stddef.h>
#include <stdint.h>
#include <zlib.h>

typedef struct rxf_src {
    const uint8_t *map;   /* the file as mapped (compressed input for gzip) */
    size_t map_len;
    size_t pos;           /* plain: read position in map                    */
    int gzip;
    /* gzip only */
    z_stream zs;
    int zs_live;
    uint8_t *win;         /* inflated bytes [win_start, win_end) are valid   */
    size_t win_cap, win_start, win_end;
    int z_done;           /* all members inflated                           */
    uint64_t offset;      /* bytes consumed from the (uncompressed) stream  */
    char error[160];
} rxf_src;

/* 0 on success, -1 with src->error set. window: gzip window size in bytes. */
int rxf_src_open(rxf_src *src, const char *path, size_t window);
void rxf_src_close(rxf_src *src);
/* Pointer to >= want bytes at the read position, or NULL with *avail set to
   what is there (less than want: end of data, or a refill was not allowed).
   On a gzip error returns NULL and sets src->error. */
const uint8_t *rxf_src_peek(rxf_src *src, size_t want, size_t *avail, int may_refill);
void rxf_src_advance(rxf_src *src, size_t n);
int rxf_src_rewind(rxf_src *src);
/* How far through the file (compressed bytes for gzip), for progress bars. */
void rxf_src_progress(const rxf_src *src, uint64_t *done, uint64_t *total);
/* 1 when every byte has been consumed. */
int rxf_src_at_end(rxf_src *src);

#endif
