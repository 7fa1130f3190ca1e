from rxfeed_abi cimport rxf_backend_ops, rxf_decoder_ops

cdef rxf_backend_ops *backend_ops_from(object capsule) except NULL
cdef rxf_decoder_ops *decoder_ops_from(object capsule) except NULL
