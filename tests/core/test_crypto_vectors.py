"""The crypto facade against published RFC vectors and its own edge-case contracts (D2).

The checks themselves live in ``tests/vectors/crypto_suite.py`` (stdlib only) so that the
browser tests can run the identical suite inside Pyodide against the libsodium.js backend.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

# willow_core from this checkout, however pytest was started (the package is not installed).
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pytest

from willow_core import crypto
from willow_core.errors import CryptoError

ROOT = Path(__file__).resolve().parents[2]
VECTORS_DIR = ROOT / "tests" / "vectors"
VECTORS_FILE = VECTORS_DIR / "rfc_vectors.json"
SHARED_VECTORS_FILE = Path("/work/shared/vectors/rfc_vectors.json")

Suite = Callable[..., list[tuple[str, bool]]]


def _load_suite() -> types.ModuleType:
    """Load ``crypto_suite.py`` by path, as the Pyodide harness does (it is not a package)."""
    spec = importlib.util.spec_from_file_location(
        "willow_tests_crypto_suite", VECTORS_DIR / "crypto_suite.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SUITE = _load_suite()
run_suite: Suite = SUITE.run_suite
VECTORS: dict[str, Any] = json.loads(VECTORS_FILE.read_text())
RESULTS = run_suite(crypto, VECTORS)


@pytest.mark.parametrize(("name", "verdict"), RESULTS, ids=[name for name, _ in RESULTS])
def test_suite_check(name: str, verdict: bool) -> None:
    assert verdict, f"crypto check failed: {name}"


def test_suite_names_are_unique() -> None:
    names = [name for name, _ in RESULTS]
    assert len(names) == len(set(names))


def test_suite_covers_every_vector_category() -> None:
    categories = {key for key in VECTORS if not key.startswith("_")}
    assert categories == set(SUITE.CATEGORIES)
    for category in categories:
        checks = [name for name, _ in RESULTS if name.startswith(f"{category}/")]
        assert checks, f"no check for {category}"
        assert not any(name.endswith("/setup") for name in checks)


def test_suite_covers_every_vector() -> None:
    names = {name for name, _ in RESULTS}
    x = VECTORS["x25519_rfc7748"]
    for i in range(len(x["section_5_2_single"])):
        assert f"x25519_rfc7748/section_5_2_single/{i}" in names
    assert "x25519_rfc7748/section_5_2_iterated/after_1" in names
    assert "x25519_rfc7748/section_5_2_iterated/after_1000" in names
    assert "x25519_rfc7748/section_5_2_iterated/after_1000000" not in names  # ~1 min: skipped
    assert "x25519_rfc7748/section_6_1_dh/alice_shared" in names
    for v in VECTORS["ed25519_rfc8032"]:
        for part in ("keypair", "sign", "verify"):
            assert f"ed25519_rfc8032/{v['name']}/{part}" in names
    for v in VECTORS["chacha20poly1305_rfc8439"]:
        for part in ("encrypt", "decrypt", "tamper-tag-bit"):
            assert f"chacha20poly1305_rfc8439/{v['name']}/{part}" in names
    for v in VECTORS["hkdf_sha256_rfc5869"]:
        assert f"hkdf_sha256_rfc5869/{v['wycheproof_tcId']}/okm" in names
    for v in VECTORS["blake2b_rfc7693"]:
        assert f"blake2b_rfc7693/{v['name']}" in names


def _broken_facade(**overrides: Callable[..., Any]) -> types.SimpleNamespace:
    """The real facade with some functions replaced, to prove the suite can fail."""
    names = [*crypto.__all__, "CryptoError"]
    module = types.SimpleNamespace(**{name: getattr(crypto, name) for name in names})
    for name, function in overrides.items():
        setattr(module, name, function)
    return module


def _failures(module: types.SimpleNamespace) -> set[str]:
    return {name for name, ok in run_suite(module, VECTORS) if not ok}


def test_suite_catches_a_wrong_x25519() -> None:
    failures = _failures(_broken_facade(x25519=lambda k, u: bytes(32)))
    assert "x25519_rfc7748/section_5_2_single/0" in failures
    assert "x25519_rfc7748/section_5_2_iterated/after_1000" in failures
    assert "edge/x25519-small-order-zero" in failures


def test_suite_catches_a_verifier_that_accepts_everything() -> None:
    failures = _failures(_broken_facade(ed25519_verify=lambda pk, msg, sig: True))
    assert "ed25519_rfc8032/TEST 1/verify-flipped-S" in failures
    assert "edge/ed25519-verify-sig-0-bytes" in failures
    assert "ed25519_rfc8032/verify_many-equals-verify" in failures


def test_suite_catches_a_raising_verifier() -> None:
    def verify(pk: bytes, msg: bytes, sig: bytes) -> bool:
        if len(sig) != 64:
            raise CryptoError("wrong length")
        return crypto.ed25519_verify(pk, msg, sig)

    failures = _failures(_broken_facade(ed25519_verify=verify))
    assert "edge/ed25519-verify-sig-63-bytes" in failures
    assert "ed25519_rfc8032/TEST 1/verify" not in failures


def test_suite_catches_a_decrypt_that_does_not_authenticate() -> None:
    def decrypt(key: bytes, nonce: bytes, box: bytes, aad: bytes) -> bytes:
        return box[:-16]

    failures = _failures(_broken_facade(aead_decrypt=decrypt))
    name = VECTORS["chacha20poly1305_rfc8439"][0]["name"]
    assert f"chacha20poly1305_rfc8439/{name}/tamper-tag-bit" in failures
    assert f"chacha20poly1305_rfc8439/{name}/decrypt" in failures  # ciphertext, not plaintext


def test_suite_reports_a_broken_vector_file_instead_of_raising() -> None:
    broken = {key: value for key, value in VECTORS.items() if key != "hkdf_sha256_rfc5869"}
    failures = {name for name, ok in run_suite(crypto, broken) if not ok}
    assert failures == {"hkdf_sha256_rfc5869/setup"}


# --- the facade's contracts, stated directly with the real exception class ---------------------


def test_facade_exposes_the_core_error() -> None:
    # The suite catches ``crypto_module.CryptoError``: it must be the one the facade raises.
    assert vars(crypto)["CryptoError"] is CryptoError


@pytest.mark.parametrize(("label", "point"), SUITE.SMALL_ORDER_POINTS)
def test_x25519_refuses_small_order_points(label: str, point: str) -> None:
    _, private = crypto.x25519_keypair_from_seed(bytes(range(32)))
    with pytest.raises(CryptoError, match="all-zero"):
        crypto.x25519(private, bytes.fromhex(point))


@pytest.mark.parametrize(
    "call",
    [
        lambda: crypto.x25519(bytes(31), bytes(32)),
        lambda: crypto.x25519(bytes(32), bytes(33)),
        lambda: crypto.x25519_keypair_from_seed(bytes(16)),
        lambda: crypto.ed25519_keypair_from_seed(bytes(33)),
        lambda: crypto.ed25519_sign(bytes(32), b"m"),
        lambda: crypto.aead_encrypt(bytes(31), bytes(12), b"", b""),
        lambda: crypto.aead_encrypt(bytes(32), bytes(24), b"", b""),
        lambda: crypto.aead_decrypt(bytes(32), bytes(8), bytes(16), b""),
        lambda: crypto.aead_decrypt(bytes(32), bytes(12), bytes(15), b""),
        lambda: crypto.aead_decrypt(bytes(32), bytes(12), bytes(16), b""),
    ],
    ids=[
        "x25519-private-31",
        "x25519-public-33",
        "x25519-seed-16",
        "ed25519-seed-33",
        "ed25519-secret-32",
        "aead-key-31",
        "aead-nonce-24",
        "aead-decrypt-nonce-8",
        "aead-decrypt-short",
        "aead-decrypt-forged",
    ],
)
def test_malformed_input_is_a_crypto_error(call: Callable[[], object]) -> None:
    with pytest.raises(CryptoError):
        call()


def test_verify_never_raises_on_malformed_input() -> None:
    public, secret = crypto.ed25519_keypair_from_seed(bytes(32))
    sig = crypto.ed25519_sign(secret, b"m")
    assert crypto.ed25519_verify(public, b"m", sig) is True
    for bad_key in (b"", public[:31], public + b"\x00"):
        assert crypto.ed25519_verify(bad_key, b"m", sig) is False
    for bad_sig in (b"", sig[:63], sig + b"\x00", bytes(64)):
        assert crypto.ed25519_verify(public, b"m", bad_sig) is False


def test_verify_many_matches_verify() -> None:
    people = [crypto.ed25519_keypair_from_seed(bytes([i]) * 32) for i in range(5)]
    items: list[tuple[bytes, bytes, bytes]] = []
    for i, (public, secret) in enumerate(people):
        msg = f"message {i}".encode()
        sig = crypto.ed25519_sign(secret, msg)
        items += [
            (public, msg, sig),
            (public, msg + b".", sig),
            (people[(i + 1) % 5][0], msg, sig),
            (public[:-1], msg, sig),
            (public, msg, sig[:-1]),
        ]
    verdicts = crypto.ed25519_verify_many(items)
    assert verdicts == [crypto.ed25519_verify(*item) for item in items]
    assert verdicts.count(True) == 5


def test_vectors_file_is_a_copy_of_the_shared_one() -> None:
    if not SHARED_VECTORS_FILE.exists():
        pytest.skip(f"{SHARED_VECTORS_FILE} is not available here")
    assert VECTORS_FILE.read_bytes() == SHARED_VECTORS_FILE.read_bytes()
