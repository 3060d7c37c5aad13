"""Elliptic-curve arithmetic over prime fields, small and readable, for PACE and CA.

PACE's generic mapping needs the mapped generator G' = s*G + H (ICAO 9303-11 §4.4.3.3.1)
and a key agreement on it; the integrated mapping needs points built from a field element
(9303-11 Appendix B). ``cryptography`` only works with the standard generator of named
curves, so this module does the arithmetic itself: short Weierstrass curves
y^2 = x^3 + a*x + b over GF(p) (BSI TR-03111 §2.3), points in Jacobian coordinates inside
the loops, affine outside.

Not hardened against timing side channels: the emulator's keys are TEST keys, and the
terminal side runs in a test harness. Multiples of the standard generator and x-only key
agreements go through ``cryptography`` (OpenSSL) for the curves it knows
(:meth:`Curve.multiply_generator`, :meth:`Curve.shared_x`); the tests check both paths
give the same points.

Curve parameters: RFC 5639 §3 (brainpoolP192r1 ... brainpoolP512r1) and FIPS 186-4
§D.1.2 (P-192 ... P-521), the curves of 9303-11 §9.5.1's standardized domain parameters.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric import ec as openssl_ec


class PointError(ValueError):
    """An encoding that is not a point of the curve (BSI TR-03111 §3.2.1, §5.2.1)."""


@dataclass(frozen=True)
class Point:
    """An affine point (x, y) of a curve; the point at infinity is ``None`` where allowed."""

    x: int
    y: int


#: A source of random bytes, ``os.urandom`` by default; tests inject fixed values.
RandomSource = Callable[[int], bytes]

_Jacobian = tuple[int, int, int]  # (X, Y, Z) with x = X/Z^2, y = Y/Z^3; Z = 0 is infinity


@dataclass(frozen=True)
class Curve:
    """Domain parameters (p, a, b, G, n, h) of a prime curve (BSI TR-03111 §2.3.2)."""

    name: str
    p: int
    a: int
    b: int
    gx: int
    gy: int
    n: int
    h: int

    @property
    def size(self) -> int:
        """Bytes of a field element, as FE2OS writes it (BSI TR-03111 §3.1.3)."""
        return (self.p.bit_length() + 7) // 8

    @property
    def generator(self) -> Point:
        return Point(self.gx, self.gy)

    def contains(self, point: Point) -> bool:
        """True if ``point`` satisfies the curve equation with coordinates in [0, p)."""
        x, y, p = point.x, point.y, self.p
        if not (0 <= x < p and 0 <= y < p):
            return False
        return (y * y - (x * x * x + self.a * x + self.b)) % p == 0

    # -- Jacobian arithmetic (formulas of Cohen, Miyaji, Ono 1998, general a)

    def _double(self, P: _Jacobian) -> _Jacobian:
        X, Y, Z = P
        p = self.p
        if Z == 0 or Y == 0:
            return (1, 1, 0)
        YY = Y * Y % p
        S = 4 * X * YY % p
        ZZ = Z * Z % p
        M = (3 * X * X + self.a * ZZ * ZZ) % p
        X3 = (M * M - 2 * S) % p
        Y3 = (M * (S - X3) - 8 * YY * YY) % p
        Z3 = 2 * Y * Z % p
        return (X3, Y3, Z3)

    def _add(self, P: _Jacobian, Q: _Jacobian) -> _Jacobian:
        X1, Y1, Z1 = P
        X2, Y2, Z2 = Q
        if Z1 == 0:
            return Q
        if Z2 == 0:
            return P
        p = self.p
        Z1Z1 = Z1 * Z1 % p
        Z2Z2 = Z2 * Z2 % p
        U1 = X1 * Z2Z2 % p
        U2 = X2 * Z1Z1 % p
        S1 = Y1 * Z2 * Z2Z2 % p
        S2 = Y2 * Z1 * Z1Z1 % p
        H = (U2 - U1) % p
        R = (S2 - S1) % p
        if H == 0:
            return self._double(P) if R == 0 else (1, 1, 0)
        HH = H * H % p
        HHH = H * HH % p
        V = U1 * HH % p
        X3 = (R * R - HHH - 2 * V) % p
        Y3 = (R * (V - X3) - S1 * HHH) % p
        Z3 = H * Z1 * Z2 % p
        return (X3, Y3, Z3)

    def _affine(self, P: _Jacobian) -> Point | None:
        X, Y, Z = P
        if Z == 0:
            return None
        p = self.p
        zinv = pow(Z, -1, p)
        zinv2 = zinv * zinv % p
        return Point(X * zinv2 % p, Y * zinv2 * zinv % p)

    # -- affine interface

    def add(self, P: Point | None, Q: Point | None) -> Point | None:
        """P + Q; ``None`` stands for the point at infinity."""
        jp = (P.x, P.y, 1) if P is not None else (1, 1, 0)
        jq = (Q.x, Q.y, 1) if Q is not None else (1, 1, 0)
        return self._affine(self._add(jp, jq))

    def multiply(self, k: int, P: Point) -> Point | None:
        """k*P by left-to-right double-and-add; ``None`` if the result is infinity."""
        k %= self.n
        result: _Jacobian = (1, 1, 0)
        base: _Jacobian = (P.x, P.y, 1)
        for bit in bin(k)[2:]:
            result = self._double(result)
            if bit == "1":
                result = self._add(result, base)
        return self._affine(result)

    def negate(self, P: Point) -> Point:
        return Point(P.x, (-P.y) % self.p)

    # -- encodings (BSI TR-03111 §3.2)

    def encode_point(self, P: Point) -> bytes:
        """Uncompressed encoding 04 || FE2OS(x) || FE2OS(y) (BSI TR-03111 §3.2.1)."""
        return b"\x04" + P.x.to_bytes(self.size, "big") + P.y.to_bytes(self.size, "big")

    def decode_point(self, data: bytes) -> Point:
        """Parse an uncompressed point and check that it lies on the curve.

        Raises :class:`PointError` for another length or format, or an off-curve point
        (the public-key validation of BSI TR-03111 §4.3.2.2 for cofactor-1 curves).
        """
        size = self.size
        if len(data) != 1 + 2 * size or data[0] != 0x04:
            raise PointError(f"not an uncompressed {self.name} point ({len(data)} bytes)")
        point = Point(int.from_bytes(data[1 : 1 + size], "big"), int.from_bytes(data[1 + size :], "big"))
        if not self.contains(point):
            raise PointError(f"point is not on {self.name}")
        if self.h != 1 and self.multiply(self.n, point) is not None:
            raise PointError(f"point is not in the prime-order subgroup of {self.name}")
        return point

    def encode_scalar(self, k: int) -> bytes:
        """A field element or scalar as FE2OS of the field size (x-coordinates, shared secrets)."""
        return k.to_bytes(self.size, "big")

    # -- keys

    def random_scalar(self, rng: RandomSource = os.urandom) -> int:
        """A uniformly random private key in [1, n-1] by rejection sampling.

        Bytes from ``rng`` are masked to the bit length of n and rejected if out of range,
        so an injected value already in range is used unchanged (tests replay the worked
        examples' keys this way).
        """
        nbits = self.n.bit_length()
        nbytes = (nbits + 7) // 8
        while True:
            k = int.from_bytes(rng(nbytes), "big") & ((1 << nbits) - 1)
            if 1 <= k < self.n:
                return k

    def public_key(self, private: int, generator: Point | None = None) -> Point:
        """private * G (or * ``generator``, the mapped G' of PACE)."""
        if generator is None or generator == self.generator:
            return self.multiply_generator(private)
        point = self.multiply(private, generator)
        if point is None:
            raise PointError("private key gives the point at infinity")
        return point

    # -- the same operations through OpenSSL where it knows the curve

    def _openssl(self) -> openssl_ec.EllipticCurve | None:
        known = OPENSSL_CURVES.get(self.name)
        return known() if known is not None else None

    def multiply_generator(self, k: int) -> Point:
        """k*G for the standard generator; :class:`PointError` if k = 0 mod n."""
        k %= self.n
        if k == 0:
            raise PointError("a multiple of n gives the point at infinity")
        known = self._openssl()
        if known is None:
            point = self.multiply(k, self.generator)
            assert point is not None  # k is in [1, n-1] and G has order n
            return point
        numbers = openssl_ec.derive_private_key(k, known).public_key().public_numbers()
        return Point(numbers.x, numbers.y)

    def shared_x(self, k: int, peer: Point) -> bytes:
        """FE2OS of the x-coordinate of k*peer, the ECDH shared secret (BSI TR-03111 §4.3.1)."""
        k %= self.n
        known = self._openssl()
        if known is None or k == 0:
            point = self.multiply(k, peer)
            if point is None:
                raise PointError("key agreement gives the point at infinity")
            return self.encode_scalar(point.x)
        key = openssl_ec.derive_private_key(k, known)
        public = openssl_ec.EllipticCurvePublicKey.from_encoded_point(known, self.encode_point(peer))
        return key.exchange(openssl_ec.ECDH(), public)


#: ``cryptography``'s classes for the curves it supports, by our names
OPENSSL_CURVES: dict[str, type[openssl_ec.EllipticCurve]] = {
    "secp192r1": openssl_ec.SECP192R1,
    "secp224r1": openssl_ec.SECP224R1,
    "secp256r1": openssl_ec.SECP256R1,
    "secp384r1": openssl_ec.SECP384R1,
    "secp521r1": openssl_ec.SECP521R1,
    "brainpoolP256r1": openssl_ec.BrainpoolP256R1,
    "brainpoolP384r1": openssl_ec.BrainpoolP384R1,
    "brainpoolP512r1": openssl_ec.BrainpoolP512R1,
}


#: The curves of ICAO 9303-11 §9.5.1 by name.
CURVES: dict[str, Curve] = {
    "secp192r1": Curve(
        "secp192r1",
        p=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFFFFFFFFFF,
        a=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFFFFFFFFFC,
        b=0x64210519E59C80E70FA7E9AB72243049FEB8DEECC146B9B1,
        gx=0x188DA80EB03090F67CBF20EB43A18800F4FF0AFD82FF1012,
        gy=0x7192B95FFC8DA78631011ED6B24CDD573F977A11E794811,
        n=0xFFFFFFFFFFFFFFFFFFFFFFFF99DEF836146BC9B1B4D22831,
        h=1,
    ),
    "brainpoolP192r1": Curve(
        "brainpoolP192r1",
        p=0xC302F41D932A36CDA7A3463093D18DB78FCE476DE1A86297,
        a=0x6A91174076B1E0E19C39C031FE8685C1CAE040E5C69A28EF,
        b=0x469A28EF7C28CCA3DC721D044F4496BCCA7EF4146FBF25C9,
        gx=0xC0A0647EAAB6A48753B033C56CB0F0900A2F5C4853375FD6,
        gy=0x14B690866ABD5BB88B5F4828C1490002E6773FA2FA299B8F,
        n=0xC302F41D932A36CDA7A3462F9E9E916B5BE8F1029AC4ACC1,
        h=1,
    ),
    "secp224r1": Curve(
        "secp224r1",
        p=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF000000000000000000000001,
        a=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFE,
        b=0xB4050A850C04B3ABF54132565044B0B7D7BFD8BA270B39432355FFB4,
        gx=0xB70E0CBD6BB4BF7F321390B94A03C1D356C21122343280D6115C1D21,
        gy=0xBD376388B5F723FB4C22DFE6CD4375A05A07476444D5819985007E34,
        n=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFF16A2E0B8F03E13DD29455C5C2A3D,
        h=1,
    ),
    "brainpoolP224r1": Curve(
        "brainpoolP224r1",
        p=0xD7C134AA264366862A18302575D1D787B09F075797DA89F57EC8C0FF,
        a=0x68A5E62CA9CE6C1C299803A6C1530B514E182AD8B0042A59CAD29F43,
        b=0x2580F63CCFE44138870713B1A92369E33E2135D266DBB372386C400B,
        gx=0xD9029AD2C7E5CF4340823B2A87DC68C9E4CE3174C1E6EFDEE12C07D,
        gy=0x58AA56F772C0726F24C6B89E4ECDAC24354B9E99CAA3F6D3761402CD,
        n=0xD7C134AA264366862A18302575D0FB98D116BC4B6DDEBCA3A5A7939F,
        h=1,
    ),
    "secp256r1": Curve(
        "secp256r1",
        p=0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF,
        a=0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFC,
        b=0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
        gx=0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
        gy=0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
        n=0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
        h=1,
    ),
    "brainpoolP256r1": Curve(
        "brainpoolP256r1",
        p=0xA9FB57DBA1EEA9BC3E660A909D838D726E3BF623D52620282013481D1F6E5377,
        a=0x7D5A0975FC2C3057EEF67530417AFFE7FB8055C126DC5C6CE94A4B44F330B5D9,
        b=0x26DC5C6CE94A4B44F330B5D9BBD77CBF958416295CF7E1CE6BCCDC18FF8C07B6,
        gx=0x8BD2AEB9CB7E57CB2C4B482FFC81B7AFB9DE27E1E3BD23C23A4453BD9ACE3262,
        gy=0x547EF835C3DAC4FD97F8461A14611DC9C27745132DED8E545C1D54C72F046997,
        n=0xA9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7,
        h=1,
    ),
    "brainpoolP320r1": Curve(
        "brainpoolP320r1",
        p=0xD35E472036BC4FB7E13C785ED201E065F98FCFA6F6F40DEF4F92B9EC7893EC28FCD412B1F1B32E27,
        a=0x3EE30B568FBAB0F883CCEBD46D3F3BB8A2A73513F5EB79DA66190EB085FFA9F492F375A97D860EB4,
        b=0x520883949DFDBC42D3AD198640688A6FE13F41349554B49ACC31DCCD884539816F5EB4AC8FB1F1A6,
        gx=0x43BD7E9AFB53D8B85289BCC48EE5BFE6F20137D10A087EB6E7871E2A10A599C710AF8D0D39E20611,
        gy=0x14FDD05545EC1CC8AB4093247F77275E0743FFED117182EAA9C77877AAAC6AC7D35245D1692E8EE1,
        n=0xD35E472036BC4FB7E13C785ED201E065F98FCFA5B68F12A32D482EC7EE8658E98691555B44C59311,
        h=1,
    ),
    "secp384r1": Curve(
        "secp384r1",
        p=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFF0000000000000000FFFFFFFF,
        a=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEFFFFFFFF0000000000000000FFFFFFFC,
        b=0xB3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF,
        gx=0xAA87CA22BE8B05378EB1C71EF320AD746E1D3B628BA79B9859F741E082542A385502F25DBF55296C3A545E3872760AB7,
        gy=0x3617DE4A96262C6F5D9E98BF9292DC29F8F41DBD289A147CE9DA3113B5F0B8C00A60B1CE1D7E819D7A431D7C90EA0E5F,
        n=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
        h=1,
    ),
    "brainpoolP384r1": Curve(
        "brainpoolP384r1",
        p=0x8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B412B1DA197FB71123ACD3A729901D1A71874700133107EC53,
        a=0x7BC382C63D8C150C3C72080ACE05AFA0C2BEA28E4FB22787139165EFBA91F90F8AA5814A503AD4EB04A8C7DD22CE2826,
        b=0x4A8C7DD22CE28268B39B55416F0447C2FB77DE107DCD2A62E880EA53EEB62D57CB4390295DBC9943AB78696FA504C11,
        gx=0x1D1C64F068CF45FFA2A63A81B7C13F6B8847A3E77EF14FE3DB7FCAFE0CBD10E8E826E03436D646AAEF87B2E247D4AF1E,
        gy=0x8ABE1D7520F9C2A45CB1EB8E95CFD55262B70B29FEEC5864E19C054FF99129280E4646217791811142820341263C5315,
        n=0x8CB91E82A3386D280F5D6F7E50E641DF152F7109ED5456B31F166E6CAC0425A7CF3AB6AF6B7FC3103B883202E9046565,
        h=1,
    ),
    "brainpoolP512r1": Curve(
        "brainpoolP512r1",
        p=0xAADD9DB8DBE9C48B3FD4E6AE33C9FC07CB308DB3B3C9D20ED6639CCA703308717D4D9B009BC66842AECDA12AE6A380E62881FF2F2D82C68528AA6056583A48F3,
        a=0x7830A3318B603B89E2327145AC234CC594CBDD8D3DF91610A83441CAEA9863BC2DED5D5AA8253AA10A2EF1C98B9AC8B57F1117A72BF2C7B9E7C1AC4D77FC94CA,
        b=0x3DF91610A83441CAEA9863BC2DED5D5AA8253AA10A2EF1C98B9AC8B57F1117A72BF2C7B9E7C1AC4D77FC94CADC083E67984050B75EBAE5DD2809BD638016F723,
        gx=0x81AEE4BDD82ED9645A21322E9C4C6A9385ED9F70B5D916C1B43B62EEF4D0098EFF3B1F78E2D0D48D50D1687B93B97D5F7C6D5047406A5E688B352209BCB9F822,
        gy=0x7DDE385D566332ECC0EABFA9CF7822FDF209F70024A57B1AA000C55B881F8111B2DCDE494A5F485E5BCA4BD88A2763AED1CA2B2FA8F0540678CD1E0F3AD80892,
        n=0xAADD9DB8DBE9C48B3FD4E6AE33C9FC07CB308DB3B3C9D20ED6639CCA70330870553E5C414CA92619418661197FAC10471DB1D381085DDADDB58796829CA90069,
        h=1,
    ),
    "secp521r1": Curve(
        "secp521r1",
        p=0x1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF,
        a=0x1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC,
        b=0x51953EB9618E1C9A1F929A21A0B68540EEA2DA725B99B315F3B8B489918EF109E156193951EC7E937B1652C0BD3BB1BF073573DF883D2C34F1EF451FD46B503F00,
        gx=0xC6858E06B70404E9CD9E3ECB662395B4429C648139053FB521F828AF606B4D3DBAA14B5E77EFE75928FE1DC127A2FFA8DE3348B3C1856A429BF97E7E31C2E5BD66,
        gy=0x11839296A789A3BC0045C8A5FB42C7D1BD998F54449579B446817AFBD17273E662C97EE72995EF42640C550B9013FAD0761353C7086A272C24088BE94769FD16650,
        n=0x1FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409,
        h=1,
    ),
}


def curve(name: str) -> Curve:
    """A curve by name (``brainpoolP256r1``, ``secp256r1`` ...); ``ValueError`` if unknown."""
    try:
        return CURVES[name]
    except KeyError:
        raise ValueError(f"unknown curve {name!r}") from None
