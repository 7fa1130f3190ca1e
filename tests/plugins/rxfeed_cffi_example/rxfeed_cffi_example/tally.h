/* A C handler table for ITCH 5.0 records: counts every record by type and
   sums AddOrder shares, inside rxfeed's nogil loop. */
#ifndef RXFEED_CFFI_EXAMPLE_TALLY_H
#define RXFEED_CFFI_EXAMPLE_TALLY_H
#include "itch50_handlers.h"

typedef struct rxcf_tally {
    uint64_t by_type[256];
    uint64_t add_shares;
    uint64_t last_sequence;
} rxcf_tally;

/* Zero the tally and point every entry of the table at it. */
void rxcf_tally_init(rxf_itch_handlers *h, rxcf_tally *t);
#endif
