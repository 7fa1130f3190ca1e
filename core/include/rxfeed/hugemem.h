/*
 * Memory for large arrays that the loop reads or writes at random or in a
 * long stream (order pools and indexes, the event ring): from 2 MiB on,
 * 2 MiB aligned and whole 2 MiB pages, transparent huge pages asked for
 * (madvise), so that the accesses do not miss the TLB on every page.
 * free() releases it. Header-only.
 */
#ifndef RXFEED_HUGEMEM_H
#define RXFEED_HUGEMEM_H

#include <stdlib.h>
#include <sys/mman.h>

#define RXF_HUGE_PAGE ((size_t)1 << 21)   /* a transparent huge page on x86-64 */

/* `bytes` of memory (malloc below RXF_HUGE_PAGE); NULL when there is none. */
static inline void *rxf_huge_alloc(size_t bytes) {
    if (bytes < RXF_HUGE_PAGE) return malloc(bytes);
    void *p = NULL;
    size_t whole = (bytes + RXF_HUGE_PAGE - 1) & ~(RXF_HUGE_PAGE - 1);
    if (posix_memalign(&p, RXF_HUGE_PAGE, whole) != 0) return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, whole, MADV_HUGEPAGE);  /* only a hint: without it, ordinary pages */
#endif
    return p;
}

#endif
