#!/usr/bin/env python3
"""Interop test: lib/link/noise.cpp (through the noise_peer driver) against an independent
Noise implementation, Debian's python3-dissononce.

usage: noise_interop.py PATH/TO/noise_peer

For IK, XX, IKpsk1 (what jsd uses with a psk), IKpsk2 and XXpsk3 (25519, ChaChaPoly, BLAKE2b), with jsd as initiator and as
responder, it checks both ways: handshake payloads, the handshake hash, the learned static
keys, and transport messages (jsd -> peer, peer -> jsd, and jsd's echo of the latter). Two
negative cases check that a psk mismatch in IKpsk2 is refused by whichever side reads
message 2 (the one that carries the psk token), jsd or dissononce.
The wire format is noise_peer's: each Noise message preceded by a 2-byte big-endian length.
Prints one line per case; exits 0 if all pass, 1 otherwise, 77 (skip) without dissononce.
Deterministic: fixed static keys, psk and prologue, blocking reads only (ephemeral keys are
random on both sides, as the protocol requires).
"""
import hashlib
import os
import struct
import subprocess
import sys
import tempfile

try:
    from dissononce.cipher.chachapoly import ChaChaPolyCipher
    from dissononce.dh.x25519.public import PublicKey
    from dissononce.dh.x25519.private import PrivateKey
    from dissononce.dh.x25519.x25519 import X25519DH
    from dissononce.exceptions.decrypt import DecryptFailedException
    from dissononce.hash.blake2b import Blake2bHash
    from dissononce.processing.handshakepatterns.interactive.IK import IKHandshakePattern
    from dissononce.processing.handshakepatterns.interactive.XX import XXHandshakePattern
    from dissononce.processing.impl.cipherstate import CipherState
    from dissononce.processing.impl.handshakestate import HandshakeState
    from dissononce.processing.impl.symmetricstate import SymmetricState
    from dissononce.processing.modifiers.psk import PSKPatternModifier
except ImportError as e:
    # The Debian package installs for the system interpreter; a python3 earlier on PATH
    # (pyenv, venv) may not see it. Retry once with /usr/bin/python3 before skipping.
    system = "/usr/bin/python3"
    if (os.environ.get("JSD_INTEROP_REEXEC") != "1" and os.path.exists(system)
            and os.path.realpath(sys.executable) != os.path.realpath(system)):
        os.environ["JSD_INTEROP_REEXEC"] = "1"
        os.execv(system, [system] + sys.argv)
    print(f"SKIP: dissononce not importable ({e}); apt-get install python3-dissononce")
    sys.exit(77)


def key(label):
    return hashlib.blake2b(b"jsd noise interop " + label, digest_size=32).digest()


DH = X25519DH()
JSD_PRIV, PEER_PRIV, PSK = key(b"jsd static"), key(b"peer static"), key(b"psk")
JSD_PUB = DH.generate_keypair(PrivateKey(JSD_PRIV)).public.data
PEER_KP = DH.generate_keypair(PrivateKey(PEER_PRIV))


class PeerError(Exception):
    pass


def send(proc, msg):
    proc.stdin.write(struct.pack(">H", len(msg)) + bytes(msg))
    proc.stdin.flush()


def recv(proc):
    def exactly(n):
        data = proc.stdout.read(n)
        if len(data) != n:
            raise PeerError("noise_peer closed the stream")
        return data
    return exactly(struct.unpack(">H", exactly(2))[0])


def expect(got, want, what):
    if got != want:
        raise PeerError(f"{what}: got {got!r}, want {want!r}")


def run_case(peer_bin, name, pattern, jsd_initiator, jsd_psk=PSK, quiet=False):
    """Runs one handshake + transport exchange; raises PeerError / DecryptFailedException,
    with noise_peer's stderr in the exception's jsd_log attribute."""
    py_initiator = not jsd_initiator
    psk_count = name.count("psk")
    remote_pre = name.startswith("IK")  # the responder's static key is known in advance
    hs = HandshakeState(SymmetricState(CipherState(ChaChaPolyCipher()), Blake2bHash()), DH)
    prologue = b"jsd interop " + name.encode()
    hs.initialize(pattern, py_initiator, prologue, s=PEER_KP,
                  rs=PublicKey(JSD_PUB) if remote_pre and py_initiator else None,
                  psks=[PSK] * psk_count if psk_count else None)
    protocol = hs.protocol_name
    expect(protocol, f"Noise_{name}_25519_ChaChaPoly_BLAKE2b", "protocol name")
    args = [peer_bin, "initiator" if jsd_initiator else "responder", protocol, JSD_PRIV.hex(),
            PEER_KP.public.data.hex() if remote_pre and jsd_initiator else "-",
            ",".join([jsd_psk.hex()] * psk_count) if psk_count else "-", prologue.hex()]
    with tempfile.TemporaryFile() as errlog:
        proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errlog)
        try:
            result, n = None, 0
            while result is None:  # dissononce returns the cipher pair after the last message
                if (n % 2 == 0) == py_initiator:
                    buf = bytearray()
                    result = hs.write_message(f"hello from peer {n}".encode(), buf)
                    send(proc, buf)
                else:
                    buf = bytearray()
                    result = hs.read_message(recv(proc), buf)
                    expect(bytes(buf), f"hello from jsd {n}".encode(), f"handshake payload {n}")
                n += 1
            c1, c2 = result  # c1: initiator -> responder
            tx, rx = (c1, c2) if py_initiator else (c2, c1)
            for i in range(3):
                expect(rx.decrypt_with_ad(b"", recv(proc)), f"jsd transport {i}".encode(), "transport from jsd")
            for i in range(3):
                text = f"peer transport {i}".encode()
                send(proc, tx.encrypt_with_ad(b"", text))
                expect(rx.decrypt_with_ad(b"", recv(proc)), b"echo: " + text, "echo from jsd")
            expect(hs.rs.data, JSD_PUB, "jsd's static key as seen by dissononce")
            proc.stdin.close()
            rc = proc.wait(timeout=30)
            errlog.seek(0)
            log = errlog.read().decode(errors="replace")
            expect(rc, 0, "noise_peer exit status")
            hh = hs.symmetricstate.get_handshake_hash().hex()
            if f"jsd: handshake hash {hh}" not in log:
                raise PeerError("handshake hashes differ")
            if f"jsd: remote static {PEER_KP.public.data.hex()}" not in log:
                raise PeerError("jsd did not end up with dissononce's static key")
        except BaseException as e:
            if proc.poll() is None:
                proc.stdin.close()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            errlog.seek(0)
            e.jsd_log = errlog.read().decode(errors="replace")
            if not quiet:
                sys.stderr.write(e.jsd_log)
            raise


def main():
    if len(sys.argv) != 2 or not os.access(sys.argv[1], os.X_OK):
        print("usage: noise_interop.py PATH/TO/noise_peer")
        return 2
    peer_bin = sys.argv[1]
    patterns = {
        "IK": IKHandshakePattern(),
        "XX": XXHandshakePattern(),
        "IKpsk1": PSKPatternModifier(1).modify(IKHandshakePattern()),
        "IKpsk2": PSKPatternModifier(2).modify(IKHandshakePattern()),
        "XXpsk3": PSKPatternModifier(3).modify(XXHandshakePattern()),
    }
    failures = 0
    for name, pattern in patterns.items():
        for jsd_initiator in (True, False):
            label = f"{name:7} jsd={'initiator' if jsd_initiator else 'responder'}"
            try:
                run_case(peer_bin, name, pattern, jsd_initiator)
                print(f"PASS {label}: payloads, hash, static keys, 3+3 transport messages + echoes")
            except (PeerError, DecryptFailedException, OSError, subprocess.SubprocessError) as e:
                failures += 1
                print(f"FAIL {label}: {type(e).__name__}: {e}")
    # Negative: different psks must make the handshake fail at message 2 (index 1), read
    # by jsd when it is the initiator and by dissononce otherwise.
    for jsd_initiator in (True, False):
        label = f"IKpsk2  jsd={'initiator' if jsd_initiator else 'responder'} wrong psk"
        try:
            run_case(peer_bin, "IKpsk2", patterns["IKpsk2"], jsd_initiator, jsd_psk=key(b"other psk"), quiet=True)
            failures += 1
            print(f"FAIL {label}: handshake succeeded")
        except (PeerError, DecryptFailedException) as e:
            if jsd_initiator:
                ok = "jsd: FAIL: read handshake message 1: handshake failed" in e.jsd_log
                who = "jsd refused message 2"
            else:
                ok = isinstance(e, DecryptFailedException) and "jsd: sent handshake message 1" in e.jsd_log
                who = "dissononce refused jsd's message 2"
            if ok:
                print(f"PASS {label}: {who}")
            else:
                failures += 1
                print(f"FAIL {label}: failed in an unexpected way: {type(e).__name__}: {e}\n{e.jsd_log}")
    print("all interop cases passed" if failures == 0 else f"{failures} interop case(s) failed")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
