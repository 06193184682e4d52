"""afoprf: RFC 9497 OPRF (mode 0x00, ristretto255-SHA512), the node's side
(Blind, Finalize) as SPEC 5.35 defines it, written from the RFCs. The
group operations are libsodium's crypto_core_ristretto255_* through
ctypes (Debian: libsodium23, which python3-nacl depends on; PyNaCl 1.5
itself does not expose ristretto255). BlindEvaluate is here only for the
RFC's test vector."""

import ctypes
import ctypes.util
import hashlib

_lib = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
if _lib.sodium_init() < 0:
    raise RuntimeError("sodium_init failed")

CONTEXT = b"OPRFV1-" + bytes([0]) + b"-ristretto255-SHA512"


def _buf(n):
    return ctypes.create_string_buffer(n)


def expand_message_xmd(msg, dst, n):
    """RFC 9380 5.3.1 with SHA-512 (b = 64, r = 128)."""
    ell = (n + 63) // 64
    dst_prime = dst + bytes([len(dst)])
    b0 = hashlib.sha512(b"\0" * 128 + msg + n.to_bytes(2, "big") + b"\0" + dst_prime).digest()
    b = [hashlib.sha512(b0 + b"\1" + dst_prime).digest()]
    for i in range(2, ell + 1):
        x = bytes(a ^ c for a, c in zip(b0, b[-1]))
        b.append(hashlib.sha512(x + bytes([i]) + dst_prime).digest())
    return b"".join(b)[:n]


def hash_to_group(msg):
    u = expand_message_xmd(msg, b"HashToGroup-" + CONTEXT, 64)
    p = _buf(32)
    _lib.crypto_core_ristretto255_from_hash(p, u)
    return p.raw


def random_scalar():
    s = _buf(32)
    _lib.crypto_core_ristretto255_scalar_random(s)
    return s.raw


def scalarmult(n, p):
    q = _buf(32)
    if _lib.crypto_scalarmult_ristretto255(q, n, p) != 0:
        raise ValueError("identity")
    return q.raw


def is_valid(p):
    return len(p) == 32 and _lib.crypto_core_ristretto255_is_valid_point(p) == 1


def invert(s):
    r = _buf(32)
    if _lib.crypto_core_ristretto255_scalar_invert(r, s) != 0:
        raise ValueError("zero scalar")
    return r.raw


def blind(inp, b=None):
    """Blind(input): (blind, blindedElement)."""
    b = b or random_scalar()
    return b, scalarmult(b, hash_to_group(inp))


def finalize(inp, b, evaluated):
    """Finalize(input, blind, evaluatedElement): the 64-byte output;
    ValueError for an evaluated element that is not a valid element."""
    if not is_valid(evaluated):
        raise ValueError("not a valid ristretto255 element")
    n = scalarmult(invert(b), evaluated)
    h = len(inp).to_bytes(2, "big") + inp + len(n).to_bytes(2, "big") + n + b"Finalize"
    return hashlib.sha512(h).digest()


def self_test():
    """RFC 9497 appendix A.1.1 (OPRF ristretto255-SHA512), test vector 1."""
    sk = bytes.fromhex("5ebcea5ee37023ccb9fc2d2019f9d7737be85591ae8652ffa9ef0f4d37063b0e")
    bl = bytes.fromhex("64d37aed22a27f5191de1c1d69fadb899d8862b58eb4220029e036ec4c1f6706")
    _, be = blind(b"\x00", bl)
    ev = scalarmult(sk, be)
    out = finalize(b"\x00", bl, ev)
    return (be.hex() == "609a0ae68c15a3cf6903766461307e5c8bb2f95e7e6550e1ffa2dc99e412803c"
            and ev.hex() == "7ec6578ae5120958eb2db1745758ff379e77cb64fe77b0b2d8cc917ea0869c7e"
            and out.hex() == "527759c3d9366f277d8c6020418d96bb393ba2afb20ff90df23fb7708264e2f3"
                             "ab9135e3bd69955851de4b1f9fe8a0973396719b7912ba9ee8aa7d0b5e24bcf6")
