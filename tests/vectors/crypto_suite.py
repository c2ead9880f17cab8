"""Known-answer and edge-case checks for the crypto facade, reusable under Pyodide.

``run_suite(crypto_module, vectors)`` drives every category of ``rfc_vectors.json`` through the
facade functions of ``crypto_module`` (``willow_core.crypto`` with whatever backend is installed)
and returns ``(check name, verdict)`` pairs. It never raises: a check that raises, or a category
whose setup raises, is a ``False`` verdict. It imports nothing but the standard library, so the
browser tests can load this file into Pyodide, install the libsodium.js backend and run the very
same checks: both backends must give identical verdicts (D2).

Check names start with the vector category (``x25519_rfc7748/...``, ``ed25519_rfc8032/...``,
...) or with ``edge/`` for the facade's contracts that no RFC vector covers (typed errors on
malformed input, ``False`` rather than an exception from verification).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["run_suite", "SMALL_ORDER_POINTS", "CATEGORIES"]

#: Every category of ``rfc_vectors.json`` this suite drives (each check name starts with one).
CATEGORIES = (
    "x25519_rfc7748",
    "ed25519_rfc8032",
    "chacha20poly1305_rfc8439",
    "hkdf_sha256_rfc5869",
    "blake2b_rfc7693",
)

#: X25519 public keys of small order (and non-canonical encodings of them), the list libsodium
#: blocks: a DH with any of them gives the all-zero value, which the facade must refuse.
SMALL_ORDER_POINTS: tuple[tuple[str, str], ...] = (
    ("zero", "00" * 32),
    ("one", "01" + "00" * 31),
    ("order-8-a", "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
    ("order-8-b", "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157"),
    ("p-minus-1", "ec" + "ff" * 30 + "7f"),
    ("p", "ed" + "ff" * 30 + "7f"),
    ("p-plus-1", "ee" + "ff" * 30 + "7f"),
)

#: The Ed25519 group order L, little-endian: a signature whose S is L is non-canonical.
_ED25519_ORDER = bytes.fromhex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")


def _flip(data: bytes, index: int) -> bytes:
    """``data`` with the lowest bit of byte ``index`` inverted."""
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


class _Runner:
    """Collects verdicts. Each check calls ``function(*args)``; an exception is a failure."""

    def __init__(self, crypto: Any) -> None:
        self.crypto = crypto
        self.error: type[BaseException] = crypto.CryptoError
        self.results: list[tuple[str, bool]] = []

    def _record(self, name: str, test: Callable[[], bool]) -> None:
        try:
            verdict = test()
        except Exception:
            verdict = False
        self.results.append((name, verdict))

    def equal(self, name: str, expected: object, function: Callable[..., Any], *args: Any) -> None:
        """``function(*args)`` returns ``expected`` (compared with ``==`` and same type)."""

        def test() -> bool:
            got = function(*args)
            return type(got) is type(expected) and bool(got == expected)

        self._record(name, test)

    def true(self, name: str, function: Callable[..., Any], *args: Any) -> None:
        """``function(*args)`` returns exactly ``True``."""
        self._record(name, lambda: function(*args) is True)

    def false(self, name: str, function: Callable[..., Any], *args: Any) -> None:
        """``function(*args)`` returns exactly ``False`` (raising is a failure)."""
        self._record(name, lambda: function(*args) is False)

    def raises(self, name: str, function: Callable[..., Any], *args: Any) -> None:
        """``function(*args)`` raises the facade's ``CryptoError`` (any other error fails)."""

        def test() -> bool:
            try:
                function(*args)
            except self.error:
                return True
            return False

        self._record(name, test)


def _x25519_iterate(x25519: Callable[[bytes, bytes], bytes], rounds: int) -> dict[int, bytes]:
    """RFC 7748 section 5.2: k = u = 9; each round r = X25519(k, u); u = k; k = r."""
    k = u = bytes([9]) + bytes(31)
    out: dict[int, bytes] = {}
    for n in range(1, rounds + 1):
        k, u = x25519(k, u), k
        out[n] = k
    return out


def _x25519(r: _Runner, section: dict[str, Any], rounds_limit: int) -> None:
    c = r.crypto
    prefix = "x25519_rfc7748"
    for i, v in enumerate(section["section_5_2_single"]):
        scalar, u, out = (bytes.fromhex(v[k]) for k in ("scalar", "u", "output"))
        r.equal(f"{prefix}/section_5_2_single/{i}", out, c.x25519, scalar, u)

    iterated = section["section_5_2_iterated"]
    targets = {
        int(key.removeprefix("after_")): bytes.fromhex(value)
        for key, value in iterated.items()
        if key.startswith("after_")
    }
    wanted = sorted(n for n in targets if n <= rounds_limit)
    if wanted:
        try:
            seen = _x25519_iterate(c.x25519, wanted[-1])
        except Exception:
            seen = {}
        for n in wanted:
            r.equal(f"{prefix}/section_5_2_iterated/after_{n}", targets[n], seen.get, n)

    dh = {k: bytes.fromhex(v) for k, v in section["section_6_1_dh"].items() if k != "wycheproof"}
    for who in ("alice", "bob"):
        r.equal(
            f"{prefix}/section_6_1_dh/{who}_keypair",
            (dh[f"{who}_pub"], dh[f"{who}_priv"]),
            c.x25519_keypair_from_seed,
            dh[f"{who}_priv"],
        )
    r.equal(
        f"{prefix}/section_6_1_dh/alice_shared",
        dh["shared"],
        c.x25519,
        dh["alice_priv"],
        dh["bob_pub"],
    )
    r.equal(
        f"{prefix}/section_6_1_dh/bob_shared",
        dh["shared"],
        c.x25519,
        dh["bob_priv"],
        dh["alice_pub"],
    )


def _ed25519(r: _Runner, vectors: list[dict[str, Any]]) -> None:
    c = r.crypto
    items: list[tuple[bytes, bytes, bytes]] = []
    for v in vectors:
        name = f"ed25519_rfc8032/{v['name']}"
        seed, public, msg, sig = (bytes.fromhex(v[k]) for k in ("secret", "public", "msg", "sig"))
        items.append((public, msg, sig))
        # libsodium's secret key is seed || public key.
        r.equal(f"{name}/keypair", (public, seed + public), c.ed25519_keypair_from_seed, seed)
        r.equal(f"{name}/sign", sig, c.ed25519_sign, seed + public, msg)
        r.true(f"{name}/verify", c.ed25519_verify, public, msg, sig)
        r.false(f"{name}/verify-longer-message", c.ed25519_verify, public, msg + b"\x00", sig)
        r.false(f"{name}/verify-flipped-R", c.ed25519_verify, public, msg, _flip(sig, 0))
        r.false(f"{name}/verify-flipped-S", c.ed25519_verify, public, msg, _flip(sig, 32))
        r.false(f"{name}/verify-S-is-L", c.ed25519_verify, public, msg, sig[:32] + _ED25519_ORDER)
        if msg:
            flipped = _flip(msg, len(msg) - 1)
            r.false(f"{name}/verify-flipped-message", c.ed25519_verify, public, flipped, sig)

    # A signature under another vector's key must fail: verification binds the key.
    for i, (_, msg, sig) in enumerate(items):
        other = items[(i + 1) % len(items)][0]
        name = f"ed25519_rfc8032/{vectors[i]['name']}/verify-wrong-key"
        r.false(name, c.ed25519_verify, other, msg, sig)

    # Batch verification agrees item by item, malformed and bad entries included.
    public, msg, sig = items[0]
    bad = [
        (public, msg + b"!", sig),
        (public, msg, _flip(sig, 5)),
        (public[:31], msg, sig),
        (public, msg, sig[:63]),
        (public + b"\x00", msg, sig),
        (public, msg, sig + b"\x00"),
    ]
    batch = [*items, *bad, *items[::-1]]
    expected = [True] * len(items) + [False] * len(bad) + [True] * len(items)
    r.equal("ed25519_rfc8032/verify_many", expected, c.ed25519_verify_many, batch)
    r.equal(
        "ed25519_rfc8032/verify_many-equals-verify",
        [c.ed25519_verify(*t) for t in batch],
        c.ed25519_verify_many,
        batch,
    )
    r.equal("ed25519_rfc8032/verify_many-empty", [], c.ed25519_verify_many, [])


def _chacha(r: _Runner, vectors: list[dict[str, Any]]) -> None:
    c = r.crypto
    for v in vectors:
        name = f"chacha20poly1305_rfc8439/{v['name']}"
        key, nonce, aad, pt, ct, tag = (
            bytes.fromhex(v[k]) for k in ("key", "nonce", "aad", "plaintext", "ciphertext", "tag")
        )
        box = ct + tag
        if "plaintext_ascii" in v:
            r.equal(f"{name}/plaintext-ascii", pt, v["plaintext_ascii"].encode)
        r.equal(f"{name}/encrypt", box, c.aead_encrypt, key, nonce, pt, aad)
        r.equal(f"{name}/decrypt", pt, c.aead_decrypt, key, nonce, box, aad)
        tampered = {
            "ciphertext-first-bit": (key, nonce, _flip(box, 0), aad),
            "ciphertext-last-bit": (key, nonce, _flip(box, len(ct) - 1), aad),
            "tag-bit": (key, nonce, _flip(box, len(box) - 1), aad),
            "aad-bit": (key, nonce, box, _flip(aad, 0) if aad else b"\x00"),
            "aad-dropped": (key, nonce, box, b"" if aad else b"\x00"),
            "nonce-bit": (key, _flip(nonce, 0), box, aad),
            "key-bit": (_flip(key, 31), nonce, box, aad),
            "truncated": (key, nonce, box[:-1], aad),
            "extended": (key, nonce, box + b"\x00", aad),
            "tag-only": (key, nonce, tag, aad),
            "shorter-than-tag": (key, nonce, tag[:15], aad),
        }
        for label, args in tampered.items():
            r.raises(f"{name}/tamper-{label}", c.aead_decrypt, *args)


def _hkdf(r: _Runner, vectors: list[dict[str, Any]]) -> None:
    c = r.crypto
    for i, v in enumerate(vectors):
        name = f"hkdf_sha256_rfc5869/{v.get('wycheproof_tcId', i)}"
        ikm, salt, info, prk, okm = (
            bytes.fromhex(v[k]) for k in ("ikm", "salt", "info", "prk", "okm")
        )
        r.equal(f"{name}/okm", okm, c.hkdf_sha256, ikm, salt, info, v["L"])
        r.equal(f"{name}/okm-prefix", okm[:1], c.hkdf_sha256, ikm, salt, info, 1)
        # Extract is HMAC(salt, ikm), an absent salt being HashLen zero bytes (RFC 5869 2.2).
        r.equal(f"{name}/prk", prk, c.hmac_sha256, salt or bytes(32), ikm)


def _blake2b(r: _Runner, vectors: list[dict[str, Any]]) -> None:
    c = r.crypto
    for v in vectors:
        name = f"blake2b_rfc7693/{v['name']}"
        data, key, out = (
            v["input_ascii"].encode(),
            bytes.fromhex(v["key"]),
            bytes.fromhex(v["output"]),
        )

        def digest(d: bytes = data, k: bytes = key, n: int = v["digest_size"]) -> Any:
            return c.blake2b(d, digest_size=n, key=k)

        r.equal(name, out, digest)


def _edges(r: _Runner) -> None:
    c = r.crypto
    seed = bytes(range(32))
    x_public, x_private = c.x25519_keypair_from_seed(seed)
    for label, point in SMALL_ORDER_POINTS:
        r.raises(f"edge/x25519-small-order-{label}", c.x25519, x_private, bytes.fromhex(point))
        # The top bit of u is ignored (RFC 7748 section 5), so it must not dodge the check.
        high = bytes.fromhex(point[:-2]) + bytes([int(point[-2:], 16) | 0x80])
        r.raises(f"edge/x25519-small-order-{label}-high-bit", c.x25519, x_private, high)
    r.equal(
        "edge/x25519-dh-commutes",
        c.x25519(bytes(range(1, 33)), x_public),
        c.x25519,
        x_private,
        c.x25519_keypair_from_seed(bytes(range(1, 33)))[0],
    )

    # Wrong lengths and wrong types are typed errors, whatever the backend.
    for n in (0, 31, 33, 64):
        r.raises(f"edge/x25519-private-{n}-bytes", c.x25519, bytes(n), x_public)
        r.raises(f"edge/x25519-public-{n}-bytes", c.x25519, x_private, b"\x09" * n)
        r.raises(f"edge/x25519-seed-{n}-bytes", c.x25519_keypair_from_seed, bytes(n))
        r.raises(f"edge/ed25519-seed-{n}-bytes", c.ed25519_keypair_from_seed, bytes(n))
    for n in (0, 32, 63, 65):
        r.raises(f"edge/ed25519-secret-{n}-bytes", c.ed25519_sign, bytes(n), b"m")
    r.raises("edge/x25519-bytearray-key", c.x25519, bytearray(x_private), x_public)
    r.raises("edge/ed25519-seed-str", c.ed25519_keypair_from_seed, "0" * 32)

    key, nonce = bytes(range(32)), bytes(12)
    box = c.aead_encrypt(key, nonce, b"plaintext", b"aad")
    r.equal("edge/aead-round-trip", b"plaintext", c.aead_decrypt, key, nonce, box, b"aad")
    r.equal(
        "edge/aead-empty-plaintext",
        b"",
        c.aead_decrypt,
        key,
        nonce,
        c.aead_encrypt(key, nonce, b"", b""),
        b"",
    )
    for n in (0, 16, 31, 33):
        r.raises(f"edge/aead-encrypt-key-{n}-bytes", c.aead_encrypt, bytes(n), nonce, b"", b"")
        r.raises(f"edge/aead-decrypt-key-{n}-bytes", c.aead_decrypt, bytes(n), nonce, box, b"aad")
    # 8 is the original ChaCha20-Poly1305 nonce, 24 the XChaCha20 one: neither is accepted.
    for n in (0, 8, 11, 13, 24):
        r.raises(f"edge/aead-encrypt-nonce-{n}-bytes", c.aead_encrypt, key, bytes(n), b"", b"")
        r.raises(f"edge/aead-decrypt-nonce-{n}-bytes", c.aead_decrypt, key, bytes(n), box, b"aad")
    r.raises("edge/aead-decrypt-empty", c.aead_decrypt, key, nonce, b"", b"aad")

    # Verification reports malformed input as False and never raises.
    public, secret = c.ed25519_keypair_from_seed(seed)
    sig = c.ed25519_sign(secret, b"message")
    r.true("edge/ed25519-verify-good", c.ed25519_verify, public, b"message", sig)
    for n in (0, 31, 33, 64):
        r.false(
            f"edge/ed25519-verify-key-{n}-bytes",
            c.ed25519_verify,
            (public * 2)[:n],
            b"message",
            sig,
        )
    for n in (0, 32, 63, 65, 128):
        r.false(
            f"edge/ed25519-verify-sig-{n}-bytes",
            c.ed25519_verify,
            public,
            b"message",
            (sig * 2)[:n],
        )
    r.false("edge/ed25519-verify-zero-sig", c.ed25519_verify, public, b"message", bytes(64))
    r.false("edge/ed25519-verify-zero-key", c.ed25519_verify, bytes(32), b"message", sig)
    r.false("edge/ed25519-verify-other-message", c.ed25519_verify, public, b"massage", sig)

    # Parameter checks of the hash helpers.
    r.raises("edge/hkdf-length-0", c.hkdf_sha256, b"k", b"", b"", 0)
    r.raises("edge/hkdf-length-8161", c.hkdf_sha256, b"k", b"", b"", 255 * 32 + 1)
    r.equal("edge/hkdf-length-8160", 8160, lambda: len(c.hkdf_sha256(b"k", b"", b"", 8160)))
    r.raises("edge/blake2b-digest-0", lambda: c.blake2b(b"", digest_size=0))
    r.raises("edge/blake2b-digest-65", lambda: c.blake2b(b"", digest_size=65))
    r.raises("edge/blake2b-key-65", lambda: c.blake2b(b"", key=bytes(65)))
    r.raises("edge/blake2b-person-17", lambda: c.blake2b(b"", person=bytes(17)))
    r.equal("edge/blake2b-default-size", 32, lambda: len(c.blake2b(b"abc")))
    r.equal(
        "edge/sha256-abc",
        bytes.fromhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        c.sha256,
        b"abc",
    )


def run_suite(
    crypto_module: Any, vectors: dict[str, Any], *, rounds_limit: int = 1000
) -> list[tuple[str, bool]]:
    """Run every check; returns ``(name, verdict)`` pairs in a stable order, names unique.

    Args:
        crypto_module: the facade (``willow_core.crypto``) with its backend installed.
        vectors: the parsed ``rfc_vectors.json``.
        rounds_limit: iterated X25519 targets above this many rounds are skipped (the
            1,000,000-round one takes about a minute natively, far longer through an FFI).
    """
    r = _Runner(crypto_module)
    runs: list[tuple[str, Callable[[], None]]] = [
        ("x25519_rfc7748", lambda: _x25519(r, vectors["x25519_rfc7748"], rounds_limit)),
        ("ed25519_rfc8032", lambda: _ed25519(r, vectors["ed25519_rfc8032"])),
        ("chacha20poly1305_rfc8439", lambda: _chacha(r, vectors["chacha20poly1305_rfc8439"])),
        ("hkdf_sha256_rfc5869", lambda: _hkdf(r, vectors["hkdf_sha256_rfc5869"])),
        ("blake2b_rfc7693", lambda: _blake2b(r, vectors["blake2b_rfc7693"])),
        ("edge", lambda: _edges(r)),
    ]
    for category, run in runs:
        try:
            run()
        except Exception:
            # Setup failed (a missing vector field, a broken backend): one failing verdict.
            r.results.append((f"{category}/setup", False))
    return r.results
