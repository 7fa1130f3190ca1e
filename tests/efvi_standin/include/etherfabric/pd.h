/* rxfeed ef_vi stand-in (tests only) -- protection domains. */
#ifndef RXF_STANDIN_EF_PD_H
#define RXF_STANDIN_EF_PD_H

#include <etherfabric/base.h>

enum ef_pd_flags { EF_PD_DEFAULT = 0x0 };

typedef struct ef_pd {
    enum ef_pd_flags pd_flags;
    int ifindex;
    char intf_name[64];
} ef_pd;

extern int ef_pd_alloc_by_name(ef_pd *pd, ef_driver_handle pd_dh, const char *cluster_or_intf_name,
                               enum ef_pd_flags flags);
extern int ef_pd_free(ef_pd *pd, ef_driver_handle pd_dh);

#endif
