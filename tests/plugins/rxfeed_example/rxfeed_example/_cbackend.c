/* A backend written in plain C against rxfeed/abi.h only: replays a buffer
   of [u32 LE length][payload] records. Shows a separately compiled plugin
   joining rxfeed's nogil loop through a PyCapsule. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include "rxfeed/abi.h"

typedef struct {
    PyObject_HEAD
    Py_buffer buf;
    size_t pos;
    unsigned long long packets;
    rxf_backend_ops ops;
    char error[64];
} DatagramFile;

static int df_rx_burst(void *ctx, rxf_packet *pkts, uint32_t max) {
    DatagramFile *d = ctx;
    const uint8_t *base = d->buf.buf;
    size_t len = (size_t)d->buf.len;
    uint32_t n = 0;
    while (n < max) {
        if (d->pos == len) return n ? (int)n : RXF_EOF;
        if (len - d->pos < 4) { strcpy(d->error, "truncated length"); return n ? (int)n : RXF_ERROR; }
        uint32_t plen;
        memcpy(&plen, base + d->pos, 4);
        if (plen > len - d->pos - 4) { strcpy(d->error, "record past the end"); return n ? (int)n : RXF_ERROR; }
        memset(&pkts[n], 0, sizeof(pkts[n]));
        pkts[n].data = base + d->pos + 4;
        pkts[n].len = plen;
        d->pos += 4 + plen;
        d->packets++;
        n++;
    }
    return (int)n;
}

static const char *df_last_error(void *ctx) { return ((DatagramFile *)ctx)->error; }

static int df_init(DatagramFile *self, PyObject *args, PyObject *kw) {
    PyObject *obj;
    if (!PyArg_ParseTuple(args, "O", &obj)) return -1;
    if (PyObject_GetBuffer(obj, &self->buf, PyBUF_SIMPLE) != 0) return -1;
    self->ops.abi_version = RXF_ABI_VERSION;
    self->ops.struct_size = sizeof(rxf_backend_ops);
    self->ops.ctx = self;
    self->ops.rx_burst = df_rx_burst;
    self->ops.release = NULL;
    self->ops.last_error = df_last_error;
    return 0;
}

static void df_dealloc(DatagramFile *self) {
    if (self->buf.obj) PyBuffer_Release(&self->buf);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *df_capsule(DatagramFile *self, PyObject *unused) {
    return PyCapsule_New(&self->ops, RXF_BACKEND_CAPSULE, NULL);
}

static PyObject *df_packets(DatagramFile *self, PyObject *unused) {
    return PyLong_FromUnsignedLongLong(self->packets);
}

static PyMethodDef df_methods[] = {
    {"capsule", (PyCFunction)df_capsule, METH_NOARGS, "backend ops capsule"},
    {"packets", (PyCFunction)df_packets, METH_NOARGS, "packets handed out"},
    {NULL}};

static PyTypeObject DatagramFileType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "rxfeed_example._cbackend.DatagramFile",
    .tp_basicsize = sizeof(DatagramFile),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)df_init,
    .tp_dealloc = (destructor)df_dealloc,
    .tp_methods = df_methods,
};

static struct PyModuleDef mod = {PyModuleDef_HEAD_INIT, "_cbackend", NULL, -1, NULL};

PyMODINIT_FUNC PyInit__cbackend(void) {
    if (PyType_Ready(&DatagramFileType) < 0) return NULL;
    PyObject *m = PyModule_Create(&mod);
    if (!m) return NULL;
    Py_INCREF(&DatagramFileType);
    PyModule_AddObject(m, "DatagramFile", (PyObject *)&DatagramFileType);
    return m;
}
