# Native buffers handed to Python, shared by the first-party extensions.

cdef inline bytes buffer_bytes(const void *p, size_t n):
    """``n`` bytes at ``p`` as bytes (a copy); ``b""`` when ``n`` is 0 (``p``
    may then be NULL: a buffer never allocated, never sliced)."""
    if n == 0 or p == NULL:
        return b""
    return (<const char *>p)[:n]
