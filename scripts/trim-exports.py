#!/usr/bin/env python3
"""Removes callbacks the filter does not use from a proxy-wasm module's exports.

The Rust SDK exports every proxy-wasm callback, so Envoy calls into the VM
for each of them on every request (response headers, response body, response
trailers, access log) even though the filter does nothing there. Envoy skips
a callback the module does not export, so dropping those exports saves those
VM calls on every request. The functions stay in the module, unreferenced.

    trim-exports.py MODULE.wasm NAME [NAME ...]    (rewrites MODULE.wasm in place)

Only the export section changes; a missing name is not an error (idempotent).
"""
import sys


def read_leb(data, pos):
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, pos


def write_leb(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def trim(module, drop):
    if module[:8] != b"\0asm\x01\0\0\0":
        sys.exit("not a wasm module (version 1)")
    out = bytearray(module[:8])
    pos = 8
    removed = []
    while pos < len(module):
        section_id = module[pos]
        size, body = read_leb(module, pos + 1)
        end = body + size
        if section_id != 7:
            out += module[pos:end]
            pos = end
            continue
        count, cursor = read_leb(module, body)
        kept = []
        for _ in range(count):
            name_len, name_at = read_leb(module, cursor)
            name = module[name_at:name_at + name_len].decode()
            _, after = read_leb(module, name_at + name_len + 1)  # kind byte, then index
            entry = module[cursor:after]
            cursor = after
            if name in drop:
                removed.append(name)
            else:
                kept.append(entry)
        payload = write_leb(len(kept)) + b"".join(kept)
        out += bytes([7]) + write_leb(len(payload)) + payload
        pos = end
    return bytes(out), removed


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path, drop = sys.argv[1], set(sys.argv[2:])
    with open(path, "rb") as f:
        module = f.read()
    trimmed, removed = trim(module, drop)
    if removed:
        with open(path, "wb") as f:
            f.write(trimmed)
    print(f"{path}: {len(removed)} export(s) removed" + (f": {', '.join(sorted(removed))}" if removed else ""))


if __name__ == "__main__":
    main()
