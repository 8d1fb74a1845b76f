"""Ed25519 signature verification (RFC 8032) in plain Python, so that ``draw verify`` checks a result's signature
with the standard library alone. Verification only, of public data: no secret goes near it, so its arithmetic
need not run in constant time. About 10 ms a signature here; tests/unit/test_draw_ed25519.py holds it to the
``cryptography`` package's signatures and refusals.

Points are kept in extended coordinates (X, Y, Z, T) with x = X/Z, y = Y/Z, x*y = T/Z on the twisted Edwards
curve -x^2 + y^2 = 1 + d*x^2*y^2 over GF(2^255 - 19).
"""

from __future__ import annotations

import hashlib

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493  # the base point's order
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)  # a square root of -1

Point = tuple[int, int, int, int]


def _add(a: Point, b: Point) -> Point:
    """a + b, the curve's complete addition law (RFC 8032, 5.1.4)."""
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = 2 * D * t1 * t2 % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return e * f % P, g * h % P, f * g % P, e * h % P


def _times(n: int, point: Point) -> Point:
    """n * point, doubling and adding from the lowest bit."""
    found: Point = (0, 1, 1, 0)  # the neutral element
    while n:
        if n & 1:
            found = _add(found, point)
        point = _add(point, point)
        n >>= 1
    return found


def _x(y: int, sign: int) -> int | None:
    """The x of the curve's point with this y whose low bit is ``sign``, if there is one."""
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if (v * x * x - u) % P:
        if (v * x * x + u) % P:
            return None  # u/v has no square root: not a point
        x = x * SQRT_M1 % P
    if x == 0 and sign:
        return None
    return P - x if x & 1 != sign else x


def _point(encoded: bytes) -> Point | None:
    """A point from its 32-byte encoding (y, little-endian, with x's low bit on top), or None."""
    if len(encoded) != 32:
        return None
    y = int.from_bytes(encoded, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    if y >= P:
        return None
    x = _x(y, sign)
    return None if x is None else (x, y, 1, x * y % P)


BASE = _point(bytes.fromhex("5866666666666666666666666666666666666666666666666666666666666666"))


def _same(a: Point, b: Point) -> bool:
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def verify(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is the holder of ``public_key``'s signature of ``message`` (all raw bytes)."""
    if len(signature) != 64 or BASE is None:
        return False
    a, r = _point(public_key), _point(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= L:
        return False
    k = int.from_bytes(hashlib.sha512(signature[:32] + public_key + message).digest(), "little") % L
    return _same(_times(s, BASE), _add(r, _times(k, a)))
