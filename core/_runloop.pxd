from rxfeed_abi cimport rxf_backend_ops, rxf_sink_ops

cdef rxf_backend_ops *backend_ops_from(object capsule) except NULL
cdef rxf_sink_ops *sink_ops_from(object capsule) except NULL
