/*
 * rxfeed C ABI, version 1: the types. Included by rxfeed/abi.h, which adds
 * the constants (RXF_ABI_VERSION, capsule names, RXF_EOF, RXF_PKT_*).
 *
 * This file holds declarations only - no preprocessor lines, no inline
 * code - so that cffi's cdef() parses it as it is (rxfeed.ffi.ABI_CDEF).
 * Needs <stdint.h> (abi.h includes it).
 */

/* One received UDP payload (or stream chunk), owned by the backend. */
typedef struct rxf_packet {
    const uint8_t *data; /* first byte of the UDP payload                  */
    uint32_t len;        /* bytes at data                                   */
    uint32_t flags;      /* RXF_PKT_*                                       */
    uint64_t rx_ts_ns;   /* receive (or capture) time, ns since the Unix
                            epoch (UTC, CLOCK_REALTIME's base); 0: unknown */
    uint32_t src_ip;     /* IPv4 addresses in host byte order; 0 if unknown */
    uint32_t dst_ip;
    uint16_t src_port;
    uint16_t dst_port;
    uint32_t line;       /* which line (feed copy) it came on: 0 unless a   
                            multi-line backend says otherwise              */
} rxf_packet;

/* What a backend exports. */
typedef struct rxf_backend_ops {
    uint32_t abi_version; /* RXF_ABI_VERSION                                */
    uint32_t struct_size; /* sizeof(rxf_backend_ops)                        */
    void *ctx;            /* passed back to every call                      */
    /* Fill up to max packets. Returns the count (0: nothing yet, poll again),
       RXF_EOF, or RXF_ERROR. Must not block on the live path.              */
    int (*rx_burst)(void *ctx, rxf_packet *pkts, uint32_t max);
    /* Give back the n packets of the last burst. May be NULL.               */
    void (*release)(void *ctx, rxf_packet *pkts, uint32_t n);
    /* Text of the last RXF_ERROR (static or ctx-owned). May be NULL.        */
    const char *(*last_error)(void *ctx);
} rxf_backend_ops;

/* What a decoder (session framing + message decoding) exports. */
typedef struct rxf_decoder_ops {
    uint32_t abi_version;
    uint32_t struct_size;
    void *ctx;
    /* Consume a burst. Returns 0, or non-zero to stop the loop; last_error
       then says why (NULL or "" for a normal stop such as end of session).
       Called without the GIL.                                              */
    int (*on_burst)(void *ctx, const rxf_packet *pkts, uint32_t n);
    /* End of input: flush partial state (e.g. a message cut at the end of a
       stream). May be NULL.                                                */
    void (*on_end)(void *ctx);
    /* Text of why on_burst stopped the loop (static or ctx-owned). May be
       NULL.                                                                */
    const char *(*last_error)(void *ctx);
    /* The loop is idle (a poll brought nothing): time-driven work such as
       declaring a gap lost after its timeout or sending a re-request.
       Returns 0, or non-zero to stop the loop (as on_burst). May be NULL.
       Added after the first release of ABI 1: a table whose struct_size
       ends before it has none (RXF_DECODER_OPS_MIN_SIZE).                  */
    int (*on_idle)(void *ctx);
} rxf_decoder_ops;
