/* rxfeed ef_vi stand-in (tests only) -- registered DMA memory. */
#ifndef RXF_STANDIN_EF_MEMREG_H
#define RXF_STANDIN_EF_MEMREG_H

#include <etherfabric/base.h>
#include <etherfabric/ef_vi.h>

struct ef_pd;

typedef struct ef_memreg {
    ef_addr base;  /* the stand-in "IOMMU" maps DMA addresses 1:1 to virtual ones */
    size_t len;
} ef_memreg;

extern int ef_memreg_alloc(ef_memreg *mr, ef_driver_handle mr_dh, struct ef_pd *pd, ef_driver_handle pd_dh,
                           void *p_mem, size_t len_bytes);
extern int ef_memreg_free(ef_memreg *mr, ef_driver_handle mr_dh);

static inline ef_addr ef_memreg_dma_addr(ef_memreg *mr, size_t offset) { return mr->base + offset; }

#endif
