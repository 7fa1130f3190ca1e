# Cython declarations of the byte source (include/rxfeed/bytesource.h).
from libc.stdint cimport uint8_t, uint64_t

cdef extern from "rxfeed/bytesource.h" nogil:
    ctypedef struct rxf_src:
        int gzip
        int seekable
        uint64_t offset
        uint64_t gz_trailing
        int gz_trailing_partial
        char error[224]
    int rxf_src_open(rxf_src *src, const char *path, size_t window, int map)
    int rxf_src_open_fd(rxf_src *src, int fd, const char *name, const uint8_t *prefix, size_t prefix_len,
                        size_t window, int map)
    int rxf_src_mapped(const rxf_src *src)
    void rxf_src_close(rxf_src *src)
    const uint8_t *rxf_src_peek(rxf_src *src, size_t want, size_t *avail, int may_refill)
    void rxf_src_advance(rxf_src *src, size_t n)
    int rxf_src_rewind(rxf_src *src)
    int rxf_src_ended(const rxf_src *src)
    void rxf_src_progress(const rxf_src *src, uint64_t *done, uint64_t *total)
