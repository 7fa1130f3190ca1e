/* See rxfeed/bytesource.h. */
#include "rxfeed/bytesource.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int zs_start(rxf_src *src) {
    memset(&src->zs, 0, sizeof(src->zs));
    src->zs.next_in = (Bytef *)src->map;
    src->zs.avail_in = (uInt)(src->map_len > 0x7fffffffu ? 0x7fffffffu : src->map_len);
    if (inflateInit2(&src->zs, 16 + MAX_WBITS) != Z_OK) {
        snprintf(src->error, sizeof(src->error), "zlib: inflateInit2 failed");
        return -1;
    }
    src->zs_live = 1;
    src->win_start = src->win_end = 0;
    src->z_done = 0;
    return 0;
}

int rxf_src_open(rxf_src *src, const char *path, size_t window) {
    memset(src, 0, sizeof(*src));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(src->error, sizeof(src->error), "%s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(src->error, sizeof(src->error), "%s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    src->map_len = (size_t)st.st_size;
    if (src->map_len > 0) {
        void *m = mmap(NULL, src->map_len, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            snprintf(src->error, sizeof(src->error), "%s: mmap: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
        madvise(m, src->map_len, MADV_SEQUENTIAL);
        src->map = m;
    }
    close(fd);
    src->gzip = src->map_len >= 2 && src->map[0] == 0x1f && src->map[1] == 0x8b;
    if (src->gzip) {
        src->win_cap = window < (1u << 16) ? (1u << 16) : window;
        src->win = malloc(src->win_cap);
        if (!src->win) {
            snprintf(src->error, sizeof(src->error), "out of memory for a %zu-byte window", src->win_cap);
            rxf_src_close(src);
            return -1;
        }
        if (zs_start(src) != 0) { rxf_src_close(src); return -1; }
    }
    return 0;
}

void rxf_src_close(rxf_src *src) {
    if (src->zs_live) inflateEnd(&src->zs);
    src->zs_live = 0;
    free(src->win);
    src->win = NULL;
    if (src->map) munmap((void *)src->map, src->map_len);
    src->map = NULL;
}

/* Inflate more into the window after sliding unread bytes to its start. */
static int refill(rxf_src *src) {
    if (src->z_done) return 0;
    size_t keep = src->win_end - src->win_start;
    if (src->win_start > 0) {
        memmove(src->win, src->win + src->win_start, keep);
        src->win_start = 0;
        src->win_end = keep;
    }
    while (src->win_end < src->win_cap && !src->z_done) {
        src->zs.next_out = src->win + src->win_end;
        src->zs.avail_out = (uInt)(src->win_cap - src->win_end);
        int rc = inflate(&src->zs, Z_NO_FLUSH);
        src->win_end = src->win_cap - src->zs.avail_out;
        if (rc == Z_STREAM_END) {
            /* another gzip member may follow (concatenated .gz files) */
            size_t used = (size_t)((const uint8_t *)src->zs.next_in - src->map);
            if (used + 2 <= src->map_len && src->map[used] == 0x1f && src->map[used + 1] == 0x8b) {
                inflateReset(&src->zs);
            } else {
                src->z_done = 1;
            }
        } else if (rc == Z_BUF_ERROR && src->zs.avail_in == 0) {
            size_t used = (size_t)((const uint8_t *)src->zs.next_in - src->map);
            if (used < src->map_len) {
                size_t rest = src->map_len - used;
                src->zs.avail_in = (uInt)(rest > 0x7fffffffu ? 0x7fffffffu : rest);
                continue;
            }
            snprintf(src->error, sizeof(src->error), "gzip: file ends inside the compressed stream (truncated)");
            src->z_done = 1;
            return -1;
        } else if (rc != Z_OK) {
            snprintf(src->error, sizeof(src->error), "gzip: corrupt data (%s)", src->zs.msg ? src->zs.msg : "zlib error");
            src->z_done = 1;
            return -1;
        }
    }
    return 0;
}

const uint8_t *rxf_src_peek(rxf_src *src, size_t want, size_t *avail, int may_refill) {
    if (!src->gzip) {
        size_t have = src->map_len - src->pos;
        *avail = have;
        return have >= want ? src->map + src->pos : NULL;
    }
    size_t have = src->win_end - src->win_start;
    if (have < want && may_refill && !src->z_done) {
        if (want > src->win_cap) {
            snprintf(src->error, sizeof(src->error), "record of %zu bytes exceeds the %zu-byte gzip window", want, src->win_cap);
            *avail = have;
            return NULL;
        }
        if (refill(src) != 0) { *avail = src->win_end - src->win_start; return NULL; }
        have = src->win_end - src->win_start;
    }
    *avail = have;
    return have >= want ? src->win + src->win_start : NULL;
}

void rxf_src_advance(rxf_src *src, size_t n) {
    if (src->gzip) src->win_start += n;
    else src->pos += n;
    src->offset += n;
}

int rxf_src_rewind(rxf_src *src) {
    src->offset = 0;
    src->error[0] = 0;
    if (!src->gzip) { src->pos = 0; return 0; }
    inflateEnd(&src->zs);
    src->zs_live = 0;
    return zs_start(src);
}

int rxf_src_at_end(rxf_src *src) {
    if (!src->gzip) return src->pos >= src->map_len;
    return src->z_done && src->win_start >= src->win_end;
}

void rxf_src_progress(const rxf_src *src, uint64_t *done, uint64_t *total) {
    *total = src->map_len;
    if (!src->gzip) *done = src->pos;
    else *done = src->zs_live ? (uint64_t)((const uint8_t *)src->zs.next_in - src->map) : src->map_len;
}
