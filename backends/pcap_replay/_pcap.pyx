# cython: language_level=3, boundscheck=False, wraparound=False
"""Native pcap/pcapng reader exported through the rxfeed C ABI."""
from libc.stdlib cimport calloc, free
from cpython.pycapsule cimport PyCapsule_New
from rxfeed_abi cimport fill_backend_ops, RXF_BACKEND_CAPSULE
from rxfeed_src cimport rxf_src_progress, rxf_src_mapped

from rxfeed import sources
from rxfeed.backend_base import check_filter_count, net_drops


cdef int _rx_burst(void *ctx, rxf_packet *pkts, uint32_t max) noexcept nogil:
    return rxf_pcap_rx_burst(ctx, pkts, max)


cdef const char *_last_error(void *ctx) noexcept nogil:
    return rxf_pcap_last_error(ctx)


cdef class PcapReader:
    """Open ``path`` (pcap or pcapng, plain or gzip; a file, pipe or FIFO) for replay.

    :param filters: ``(ip, port)`` pairs in host byte order, 0 = any; a frame
        passes when it matches one. Empty: everything passes.
    :param speed: 0 as fast as possible, 1 original timing, k k-times faster.
    :param loops: passes over the file.
    :param mmap: map a plain regular file (pointers into the mapping, no copy).
    """

    def __cinit__(self, str path, filters=(), double speed=0.0, unsigned long long loops=1, bint mmap=True):
        self.pc = <rxf_pcap *>calloc(1, sizeof(rxf_pcap))
        if self.pc == NULL:
            raise MemoryError()
        held = sources.claim(path)  # a pipe whose first bytes were read to detect the format
        cdef bytes prefix = held[1] if held else b""
        if rxf_pcap_open(self.pc, path.encode(), held[0] if held else -1, prefix, len(prefix), mmap) != 0:
            msg = self.pc.error.decode(errors="replace")
            free(self.pc)
            self.pc = NULL
            raise ValueError(msg)
        self.is_open = True
        if loops > 1 and not self.pc.src.seekable:
            raise ValueError(f"{path}: cannot loop: a pipe or FIFO is read once (give a regular file)")
        filters = list(filters)
        check_filter_count(filters)  # the C array's bound (DestinationFilters in the config refuses first)
        for i, (ip, port) in enumerate(filters):
            self.pc.filter.ip[i] = ip
            self.pc.filter.port[i] = port
        self.pc.filter.n = len(filters)
        self.pc.speed = speed
        self.pc.loops = max(loops, 1)
        fill_backend_ops(&self.ops, self.pc, _rx_burst, NULL, _last_error)

    def __dealloc__(self):
        if self.pc != NULL:
            if self.is_open:
                rxf_pcap_close(self.pc)
            free(self.pc)

    def capsule(self):
        """The backend function table (valid while this object lives)."""
        return PyCapsule_New(&self.ops, RXF_BACKEND_CAPSULE, NULL)

    @property
    def mapped(self) -> bool:
        """True when the file is mapped (pointers into the mapping, no copy)."""
        return self.is_open and rxf_src_mapped(&self.pc.src) != 0

    @property
    def format(self) -> str:
        return "pcap" if self.pc.format == 1 else "pcapng"

    def stats(self) -> dict:
        """Counters: frames read, UDP payloads handed out, drops by kind."""
        s = self.pc.stats
        drops = net_drops([s.drops[i] for i in range(RXF_NET_NVERDICTS)], filtered=s.filtered,
                          truncated_record=s.truncated_records)
        out = {"frames": s.records, "packets": s.packets, "bytes": s.bytes, "loops": s.loops_done,
               "skipped_blocks": s.skipped_blocks, "drops": drops}
        warnings = []
        if s.ts_out_of_range:
            out["timestamps_out_of_range"] = s.ts_out_of_range
            warnings.append(f"{s.ts_out_of_range} packet timestamps were out of range (pcapng if_tsoffset or "
                            "resolution) and were clamped to 0 or 2^64-1 ns")
        if self.pc.src.gzip:
            out["gzip_trailing_bytes"] = self.pc.src.gz_trailing
            if self.pc.src.gz_trailing:
                warnings.append(sources.trailing_warning(self.pc.src.gz_trailing, self.pc.src.gz_trailing_partial))
        if warnings:
            out["warnings"] = warnings
        return out

    def progress(self):
        """(bytes done, bytes total) of the file (compressed bytes for gzip)."""
        cdef uint64_t done = 0, total = 0
        if self.is_open:
            rxf_src_progress(&self.pc.src, &done, &total)
        return done, total

    def close(self):
        if self.is_open:
            rxf_pcap_close(self.pc)
            self.is_open = False
