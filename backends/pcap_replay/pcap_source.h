/*
 * pcap / pcapng replay as an rxfeed backend (rxf_backend_ops).
 * Frames are parsed down to the UDP payload with rxfeed/net.h; the payload
 * pointers point into the byte source's read window (rxfeed/bytesource.h):
 * no copy after the read. Files, pipes and FIFOs; plain or gzip.
 */
#ifndef RXF_PCAP_SOURCE_H
#define RXF_PCAP_SOURCE_H

#include <stdint.h>
#include "rxfeed/abi.h"
#include "rxfeed/bytesource.h"
#include "rxfeed/net.h"

#define RXF_PCAP_MAX_IF 64
#define RXF_PCAP_MAX_RECORD (16u << 20)
#define RXF_PCAP_WINDOW (RXF_PCAP_MAX_RECORD + (64u << 10)) /* any record fits */

typedef struct rxf_pcap_if {
    uint32_t linktype;
    int tsres_pow2;      /* 1: resolution 2^-tsres, 0: 10^-tsres */
    uint32_t tsres;
    int64_t tsoffset_s;
} rxf_pcap_if;

typedef struct rxf_pcap_stats {
    uint64_t records, packets, bytes, filtered, loops_done;
    uint64_t drops[RXF_NET_NVERDICTS];
    uint64_t truncated_records, skipped_blocks;
    uint64_t ts_out_of_range;   /* pcapng timestamps clamped to [0, 2^64-1] ns */
} rxf_pcap_stats;

typedef struct rxf_pcap {
    rxf_src src;
    int format;          /* 1: classic pcap, 2: pcapng */
    int swap;            /* byte order differs from the host */
    int nsec;            /* classic: nanosecond magic */
    uint32_t linktype;   /* classic */
    uint32_t n_if;
    rxf_pcap_if ifs[RXF_PCAP_MAX_IF];
    rxf_dst_filter filter;
    double speed;        /* 0: as fast as possible; 1: original timing; k: k times faster */
    uint64_t loops;      /* total passes over the file (>= 1) */
    int pending_reset;
    int started;
    uint64_t first_ts, start_mono;
    rxf_pcap_stats stats;
    char error[320];
} rxf_pcap;

/* fd < 0: open path. Otherwise read fd (owned from now on), whose first
   prefix_len bytes were already read into prefix (format detection). */
int rxf_pcap_open(rxf_pcap *pc, const char *path, int fd, const uint8_t *prefix, size_t prefix_len, int map);
void rxf_pcap_close(rxf_pcap *pc);
int rxf_pcap_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max);
const char *rxf_pcap_last_error(void *ctx);

#endif
