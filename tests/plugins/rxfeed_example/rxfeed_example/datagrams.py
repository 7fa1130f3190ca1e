"""File format of both example backends: repeated [u32 little-endian length][UDP payload]."""
import struct


def write(path, payloads):
    with open(path, "wb") as f:
        for p in payloads:
            f.write(struct.pack("<I", len(p)) + p)


def read(path):
    data = open(path, "rb").read()
    out, pos = [], 0
    while pos + 4 <= len(data):
        (n,) = struct.unpack_from("<I", data, pos)
        out.append(memoryview(data)[pos + 4:pos + 4 + n])
        pos += 4 + n
    return out
