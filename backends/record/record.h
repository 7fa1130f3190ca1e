/*
 * Live capture around any rxfeed backend (the `record` plugin).
 *
 * A wrapper table: its rx_burst calls the inner backend's rx_burst and, for
 * each packet, copies the payload and its metadata (receive time, addresses,
 * ports, line, flags) into a bounded single-producer/single-consumer byte
 * ring. A writer thread drains the ring into pcapng files. The loop never
 * waits: a packet that finds the ring full is not recorded and is counted
 * (overflow). Packets are handed on untouched, pointing into the inner
 * backend's memory; release is forwarded as it is (docs/recovery.md,
 * "Live capture").
 *
 * The files hold what the decoder saw: one Ethernet/IPv4/UDP frame per
 * payload, its headers synthesized from the metadata (the original L2/IP
 * headers are not kept).
 */
#ifndef RXFEED_RECORD_H
#define RXFEED_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "rxfeed/abi.h"

/* Largest UDP payload an IPv4 datagram can carry: longer packets are not
   recorded and are counted (too_big). */
#define RXF_RECORD_MAX_PAYLOAD 65507u

typedef struct rxf_record_cfg {
    const char *dir;       /* existing, writable directory                     */
    const char *prefix;    /* file names: DIR/PREFIX-NNNNNN.pcapng             */
    uint64_t ring_bytes;   /* the queue between loop and writer (>= 4096)      */
    uint64_t rotate_bytes; /* new file once this many bytes are written; 0: never */
    uint64_t rotate_ns;    /* new file once its first packet is this old
                              (receive time); 0: never                         */
} rxf_record_cfg;

typedef struct rxf_record_stats {
    uint64_t seen;             /* packets handed on by the wrapper            */
    uint64_t queued;           /* copied into the ring                        */
    uint64_t overflow_packets; /* ring full: not recorded                     */
    uint64_t overflow_bytes;
    uint64_t too_big;          /* payload > RXF_RECORD_MAX_PAYLOAD: not recorded */
    uint64_t packets;          /* written to a file                           */
    uint64_t bytes;            /* payload bytes written                       */
    uint64_t file_bytes;       /* bytes of pcapng written, all files          */
    uint64_t files;            /* files opened                                */
    uint64_t write_errors;     /* 1 once a write failed (recording stopped)   */
    uint64_t lost_to_error;    /* queued packets not written after an error   */
    uint64_t after_error;      /* packets not queued: recording had stopped on an error */
    uint64_t ring_peak;        /* most bytes waiting in the ring at once      */
} rxf_record_stats;

typedef struct rxf_record rxf_record;

/* Opens the first file and starts the writer thread. NULL on bad arguments,
   a file that cannot be created, or no memory (*why says which; the text
   lives until the next call). `inner` is copied; its owner must outlive the
   wrapper. */
rxf_record *rxf_record_new(const rxf_backend_ops *inner, const rxf_record_cfg *cfg, const char **why);
/* Wait (up to timeout_ns) until the writer has written everything queued so
   far, and flush it to the kernel. Returns 0 when drained. Not from the loop. */
int rxf_record_drain(rxf_record *r, uint64_t timeout_ns);
/* Stop the writer: everything queued is written, the file fsynced and
   closed. Idempotent; later bursts still pass packets on, unrecorded. */
void rxf_record_stop(rxf_record *r);
void rxf_record_free(rxf_record *r);
/* This wrapper's table functions (ctx = the rxf_record). */
int rxf_record_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max);
void rxf_record_release(void *ctx, rxf_packet *pkts, uint32_t n);
const char *rxf_record_last_error(void *ctx);
/* A snapshot of the counters (each read atomically). */
void rxf_record_get_stats(const rxf_record *r, rxf_record_stats *out);
/* The first write error's text ("" if none); stable once set. */
const char *rxf_record_error(const rxf_record *r);

#endif
