/*
 * rxfeed's ef_vi stand-in (tests only) -- base.h.
 *
 * Source-compatible with the subset of Onload's public ef_vi API that
 * rxfeed's efvi backend calls: the same names, argument lists and meanings,
 * written from the documented API. Not ABI-compatible with Onload and not a
 * copy of it: structures here are our own. See tests/efvi_standin/README.md.
 */
#ifndef RXF_STANDIN_EF_BASE_H
#define RXF_STANDIN_EF_BASE_H

#include <stddef.h>
#include <stdint.h>

typedef int ef_driver_handle;

/* Opens the (simulated) driver; 0 or a negative errno. */
extern int ef_driver_open(ef_driver_handle *dh_out);
extern int ef_driver_close(ef_driver_handle dh);

#endif
