/* The example_cffi backend: replays a datagram file held in memory.

   File format: the 8-byte magic "RXCFFI01", then records of
   [u32 little-endian length][payload], length at most RXCF_MAX_PAYLOAD.
   Every length is checked against what is left of the file; a bad record
   ends the run with RXF_ERROR and its offset in last_error. */
#ifndef RXFEED_CFFI_EXAMPLE_READER_H
#define RXFEED_CFFI_EXAMPLE_READER_H
#include <stddef.h>
#include <stdint.h>
#include "rxfeed/abi.h"

#define RXCF_MAGIC "RXCFFI01"
#define RXCF_MAGIC_LEN 8
#define RXCF_MAX_PAYLOAD 65535u

typedef struct rxcf_reader {
    const uint8_t *buf; /* the file's bytes (owned by the Python side) */
    size_t len, pos;
    uint32_t loops, pass; /* passes over the file, and the current one (0-based) */
    int reset_pending;    /* flag the next packet RXF_PKT_SOURCE_RESET */
    int failed;
    uint64_t packets, bytes;
    char error[128];
} rxcf_reader;

/* Check the magic and fill ops; 0, or -1 with the reason in r->error. */
int rxcf_reader_open(rxcf_reader *r, rxf_backend_ops *ops, const uint8_t *buf, size_t len, uint32_t loops);
/* Forget the buffer: every later rx_burst returns RXF_EOF. */
void rxcf_reader_close(rxcf_reader *r);
#endif
