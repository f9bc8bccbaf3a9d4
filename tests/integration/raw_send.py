#!/usr/bin/env python3
"""Sends one event on a node's control socket, as a hostile local tool would
(no jsd tool sends such bodies), and prints the first answer to it:
  raw_send.py SOCKET DURABLE TO OBJECT DEPTH PREFIX SUFFIX [FILL]
The body is PREFIX, FILL (0) bytes 'a', DEPTH '[' then DEPTH ']', SUFFIX. Prints "reply BODY"
(BODY cut to 200 bytes) or "error WHY"; exit 1 when the listener closes the
socket or says nothing for 30 s.
"""
import socket
import struct
import sys

SEND, ERROR, REPLY = 20, 23, 24


def main():
    path, durable, to, obj, depth, prefix, suffix = sys.argv[1:8]
    depth = int(depth)
    fill = int(sys.argv[8]) if len(sys.argv) > 8 else 0
    body = (prefix + "a" * fill + "[" * depth + "]" * depth + suffix).encode()
    ev = struct.pack(">BQ", 1, 1)  # a call, id 1
    for s in (b"", to.encode(), obj.encode()):
        ev += struct.pack(">B", len(s)) + s
    ev += struct.pack(">I", len(body)) + body + b"\0"
    msg = struct.pack(">BB", SEND, 1 if durable == "1" else 0) + ev
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(path)
    s.sendall(struct.pack(">I", len(msg)) + msg)
    buf = b""

    def take(n):
        nonlocal buf
        while len(buf) < n:
            got = s.recv(1 << 20)
            if not got:
                print("closed")
                sys.exit(1)
            buf += got
        out, buf = buf[:n], buf[n:]
        return out

    while True:
        (n,) = struct.unpack(">I", take(4))
        m = take(n)
        if m[0] == ERROR:
            (wl,) = struct.unpack(">I", m[9:13])
            print("error " + m[13:13 + wl].decode(errors="replace"))
            return
        if m[0] == REPLY:
            p = 1 + 1 + 8
            for _ in range(3):
                p += 1 + m[p]
            (bl,) = struct.unpack(">I", m[p:p + 4])
            print("reply " + m[p + 4:p + 4 + min(bl, 200)].decode(errors="replace"))
            return
        # a notice about the link: the answer is still to come


try:
    main()
except socket.timeout:
    print("timeout")
    sys.exit(1)
