/* rxfeed ef_vi stand-in (tests only) -- VI allocation and filters. */
#ifndef RXF_STANDIN_EF_VI_ALLOC_H
#define RXF_STANDIN_EF_VI_ALLOC_H

#include <etherfabric/base.h>
#include <etherfabric/ef_vi.h>

struct ef_pd;

enum ef_filter_flags { EF_FILTER_FLAG_NONE = 0x0 };

typedef struct {
    unsigned flags;
    int protocol;
    unsigned host_be32;
    int port_be16;
    int set;
} ef_filter_spec;

typedef struct ef_filter_cookie {
    int filter_id;
    int filter_type;
} ef_filter_cookie;

extern int ef_vi_alloc_from_pd(ef_vi *vi, ef_driver_handle vi_dh, struct ef_pd *pd, ef_driver_handle pd_dh,
                               int evq_capacity, int rxq_capacity, int txq_capacity, ef_vi *evq_opt,
                               ef_driver_handle evq_dh, enum ef_vi_flags flags);
extern int ef_vi_free(ef_vi *vi, ef_driver_handle nic);
extern void ef_filter_spec_init(ef_filter_spec *filter_spec, enum ef_filter_flags flags);
extern int ef_filter_spec_set_ip4_local(ef_filter_spec *filter_spec, int protocol, unsigned host_be32,
                                        int port_be16);
extern int ef_vi_filter_add(ef_vi *vi, ef_driver_handle vi_dh, const ef_filter_spec *filter_spec,
                            ef_filter_cookie *filter_cookie_out);

#endif
