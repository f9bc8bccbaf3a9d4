"""A stand-in for a node's listener, as a local attacker would run one: binds
a Unix socket at PATH and counts the connections and bytes that tools send to
it, one connection at a time. t_local_trust.sh asks it what it has seen by
connecting and sending "probe": a tool that has exited before the probe was
accepted earlier, so its connection (if it made one) is counted by then.

    fake_listener.py PATH [--drop UID:GID]

--drop: bind as the caller (root, in a directory only root can write), then
become UID:GID before listen(2): the socket's path is safe, but the process
behind it (SO_PEERCRED is taken at listen) is the other user's.
Prints "ready" once it listens.
"""
import os
import socket
import sys


def main():
    path = sys.argv[1]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    if len(sys.argv) > 3 and sys.argv[2] == "--drop":
        uid, gid = (int(x) for x in sys.argv[3].split(":"))
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    s.listen(16)
    print("ready", flush=True)
    conns = nbytes = 0
    while True:
        c, _ = s.accept()
        with c:
            first = c.recv(65536)
            if first == b"probe":
                c.sendall(f"conns={conns} bytes={nbytes}\n".encode())
                continue
            conns += 1
            nbytes += len(first)
            while first:
                first = c.recv(65536)
                nbytes += len(first)


if __name__ == "__main__":
    main()
