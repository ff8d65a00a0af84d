#!/usr/bin/env python3
"""local_peer.py: a raw client of a node's local control socket, for
36-local.bats.  Frames: u32 length (type + body, little-endian) | u8 type
| CTRL: u32 id | u16 code | JSON body (docs/wire.md).

  local_peer.py SOCK conns N   opens N connections, then one more; prints
                               the extra one's answer (status, error text)
  local_peer.py SOCK bigframe  sends a frame header over the size limit;
                               prints the answer
  local_peer.py SOCK flood N   sends N MEMBERS requests without reading,
                               waits until the node stops reading or has
                               had them all, then reads everything; prints
                               "ok=K overloaded=O closed=C"
"""
import json
import socket
import struct
import sys
import time

REQ, RESP = 0x20, 0x21


def frame(rid, op, body=b"{}"):
    payload = bytes([REQ]) + struct.pack("<IH", rid, op) + body
    return struct.pack("<I", len(payload)) + payload


def read_frame(s):
    hdr = b""
    while len(hdr) < 5:
        b = s.recv(5 - len(hdr))
        if not b:
            return None
        hdr += b
    n = struct.unpack("<I", hdr[:4])[0]
    body = b""
    while len(body) < n - 1:
        b = s.recv(n - 1 - len(body))
        if not b:
            return None
        body += b
    rid, code = struct.unpack("<IH", body[:6])
    return rid, code, body[6:]


def dial(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    return s


def show(ans):
    if ans is None:
        print("closed")
        return
    rid, code, body = ans
    err = json.loads(body).get("error", "") if body else ""
    print(f"id={rid} status={code} error={err}")


def main():
    path, what = sys.argv[1], sys.argv[2]
    if what == "conns":
        n = int(sys.argv[3])
        held = [dial(path) for _ in range(n)]
        # each of them is served (the cap counts them)
        for i, s in enumerate(held):
            s.sendall(frame(1, 2))  # TIMINGS
            ans = read_frame(s)
            if ans is None or ans[1] != 0:
                print(f"connection {i} not served: {ans}")
                sys.exit(1)
        extra = dial(path)
        show(read_frame(extra))
    elif what == "bigframe":
        s = dial(path)
        s.sendall(struct.pack("<I", 16 * 1024 * 1024) + bytes([REQ]))
        show(read_frame(s))
        print("then:", "closed" if read_frame(s) is None else "open")
    elif what == "flood":
        n = int(sys.argv[3])
        s = dial(path)
        s.setblocking(False)
        sent = 0
        buf = b"".join(frame(i + 1, 1) for i in range(n))
        deadline = time.time() + 20
        while sent < len(buf) and time.time() < deadline:
            try:
                sent += s.send(buf[sent:])
            except BlockingIOError:
                time.sleep(0.05)  # the node reads no more: its queue is full
            except (BrokenPipeError, ConnectionResetError):
                break
        print(f"sent={sent * n // len(buf)}", file=sys.stderr)
        s.setblocking(True)
        s.settimeout(10)
        ok = over = 0
        closed = 0
        while True:
            try:
                ans = read_frame(s)
            except (ConnectionResetError, socket.timeout):
                ans = None
            if ans is None:
                closed = 1
                break
            if ans[1] == 0:
                ok += 1
            else:
                over += 1
            if ok + over == n:
                break
        print(f"ok={ok} overloaded={over} closed={closed}")


main()
