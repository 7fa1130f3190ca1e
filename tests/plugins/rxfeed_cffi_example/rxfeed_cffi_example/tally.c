/* The ITCH handler table of rxfeed_cffi_example (see tally.h). */
#include <string.h>
#include "tally.h"

static void on_any(void *ctx, const rxf_itch_record *r, const rxf_itch_meta *m) {
    rxcf_tally *t = ctx;
    t->by_type[(uint8_t)r->hdr.type]++;
    if (m->has_sequence) t->last_sequence = m->sequence;
}

static void on_add(void *ctx, const rxf_itch_record *r, const rxf_itch_meta *m) {
    on_any(ctx, r, m);
    ((rxcf_tally *)ctx)->add_shares += r->AddOrder.shares;
}

void rxcf_tally_init(rxf_itch_handlers *h, rxcf_tally *t) {
    memset(t, 0, sizeof *t);
    h->ctx = t;
    for (int i = 0; i < 256; i++) h->on[i] = on_any;
    h->on['A'] = on_add;
}
