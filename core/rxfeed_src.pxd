# Cython declarations of the byte source (include/rxfeed/bytesource.h).
from libc.stdint cimport uint8_t, uint64_t

cdef extern from "rxfeed/bytesource.h" nogil:
    ctypedef struct rxf_src:
        int gzip
        uint64_t offset
        char error[160]
    void rxf_src_progress(const rxf_src *src, uint64_t *done, uint64_t *total)
