"""The crypto facade inside Pyodide (libsodium.js backend) gives CPython's verdicts, exactly (D2).

Two implementations that disagree on one edge-case signature would split a community, so the
comparison is verdict by verdict over the whole vector suite (tests/vectors/crypto_suite.py,
the same file the CPython tier runs), plus crafted Ed25519 edge cases libsodium is strict about
(non-canonical S, small-order and non-canonical keys and R) through both ``ed25519_verify`` and
the batched ``ed25519_verify_many``, and the all-zero X25519 refusal at both layers.
"""

from __future__ import annotations

import importlib.util
import json
import types
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from bench.browserkit import ExternalRequests, run_python
from willow_core import crypto
from willow_core.crypto.nacl_backend import NaclBackend
from willow_core.errors import CryptoError

ROOT = Path(__file__).resolve().parents[2]
SUITE_FILE = ROOT / "tests" / "vectors" / "crypto_suite.py"
VECTORS_FILE = ROOT / "tests" / "vectors" / "rfc_vectors.json"

#: Ed25519 group order L: S + L is the same scalar, non-canonically encoded.
ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493
#: Encodings of small-order points (and non-canonical encodings of such points): public keys
#: or R values libsodium refuses.
ED25519_SMALL_ORDER = (
    "0100000000000000000000000000000000000000000000000000000000000000",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85",
    "0100000000000000000000000000000000000000000000000000000000000080",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
)
MESSAGE_LENGTHS = (0, 1, 63, 64, 1000, 70_000)

#: (CPython results, Pyodide results, case labels)
Both = tuple[dict[str, Any], dict[str, Any], list[str]]


def _load_suite() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("browser_crypto_suite", SUITE_FILE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SUITE = _load_suite()


def _scalar(data: bytes) -> int:
    return int.from_bytes(data, "little")


def _le(value: int) -> bytes:
    return value.to_bytes(32, "little")


def ed25519_cases() -> list[tuple[str, bytes, bytes, bytes]]:
    """``(label, public_key, message, signature)``: valid ones and every strictness edge."""
    cases: list[tuple[str, bytes, bytes, bytes]] = []
    keys = [crypto.ed25519_keypair_from_seed(bytes([i + 1]) * 32) for i in range(3)]
    for k, (public, secret) in enumerate(keys):
        for n in MESSAGE_LENGTHS:
            msg = bytes((i * 7 + k) % 256 for i in range(n))
            sig = crypto.ed25519_sign(secret, msg)
            r, s = sig[:32], sig[32:]
            tag = f"key{k}/len{n}"
            cases += [
                (f"{tag}/valid", public, msg, sig),
                (f"{tag}/S+L", public, msg, r + _le(_scalar(s) + ED25519_ORDER)),
                (f"{tag}/S=L", public, msg, r + _le(ED25519_ORDER)),
                (f"{tag}/S-high-bits", public, msg, r + s[:31] + bytes([s[31] | 0xE0])),
                (f"{tag}/S=0", public, msg, r + bytes(32)),
                (f"{tag}/other-key", keys[(k + 1) % 3][0], msg, sig),
                (f"{tag}/extra-byte", public, msg + b"\x00", sig),
            ]
            for j, point in enumerate(ED25519_SMALL_ORDER):
                small = bytes.fromhex(point)
                cases += [
                    (f"{tag}/small-order-key-{j}", small, msg, sig),
                    (f"{tag}/small-order-R-{j}", public, msg, small + s),
                    (f"{tag}/small-order-key-and-R-{j}", small, msg, small + bytes(32)),
                ]
    public = keys[0][0]
    cases += [
        ("zero-signature", public, b"m", bytes(64)),
        ("ones-signature", public, b"m", b"\xff" * 64),
        ("ones-key", b"\xff" * 32, b"m", crypto.ed25519_sign(keys[0][1], b"m")),
        ("not-on-curve-key", bytes([2]) + bytes(31), b"m", crypto.ed25519_sign(keys[0][1], b"m")),
    ]
    return cases


#: Runs inside Pyodide with ``harness_data`` = JSON of the suite source, vectors and cases.
PYODIDE_RUN = """
import json, types
from willow_core import crypto
from willow_core.errors import CryptoError

payload = json.loads(harness_data.to_bytes())
suite = types.ModuleType("browser_crypto_suite")
exec(compile(payload["suite"], "crypto_suite.py", "exec"), suite.__dict__)
cases = [tuple(bytes.fromhex(x) for x in case) for case in payload["cases"]]

def refusals(point_hex):
    _, private = crypto.x25519_keypair_from_seed(bytes(range(32)))
    point = bytes.fromhex(point_hex)
    raw = crypto.get_backend().x25519(private, point)
    try:
        crypto.x25519(private, point)
        facade = "accepted"
    except CryptoError as e:
        facade = "all-zero" if "all-zero" in str(e) else "other-error"
    return [raw is None or not any(raw), facade]

json.dumps({
    "backend": crypto.get_backend().name,
    "suite": suite.run_suite(crypto, json.loads(payload["vectors"])),
    "single": [crypto.ed25519_verify(*c) for c in cases],
    "batch": crypto.ed25519_verify_many(cases),
    "x25519": [refusals(p) for _, p in suite.SMALL_ORDER_POINTS],
})
"""


def cpython_results(cases: list[tuple[bytes, bytes, bytes]]) -> dict[str, Any]:
    vectors = json.loads(VECTORS_FILE.read_text())
    _, private = crypto.x25519_keypair_from_seed(bytes(range(32)))
    x25519 = []
    for _, point_hex in SUITE.SMALL_ORDER_POINTS:
        point = bytes.fromhex(point_hex)
        raw = NaclBackend().x25519(private, point)
        with pytest.raises(CryptoError, match="all-zero"):
            crypto.x25519(private, point)
        x25519.append([raw is None or not any(raw), "all-zero"])
    return {
        "backend": crypto.get_backend().name,
        # JSON turns the (name, verdict) tuples into lists, as it does for Pyodide's.
        "suite": [list(r) for r in SUITE.run_suite(crypto, vectors)],
        "single": [crypto.ed25519_verify(*c) for c in cases],
        "batch": crypto.ed25519_verify_many(cases),
        "x25519": x25519,
    }


@pytest.fixture(scope="module")
def both(harness: Page) -> Both:
    labelled = ed25519_cases()
    cases = [(pk, msg, sig) for _, pk, msg, sig in labelled]
    payload = {
        "suite": SUITE_FILE.read_text(),
        "vectors": VECTORS_FILE.read_text(),
        "cases": [[x.hex() for x in case] for case in cases],
    }
    browser = json.loads(run_python(harness, PYODIDE_RUN, json.dumps(payload).encode()))
    return cpython_results(cases), browser, [label for label, *_ in labelled]


def test_backends_are_the_ones_meant(both: Both) -> None:
    native, browser, _ = both
    assert native["backend"] == "pynacl"
    assert browser["backend"] == "libsodium.js"


def test_vector_suite_verdicts_are_identical(both: Both, external: ExternalRequests) -> None:
    native, browser, _ = both
    assert len(native["suite"]) > 100
    assert browser["suite"] == native["suite"]
    failed = [name for name, ok in native["suite"] if not ok]
    assert failed == []


def test_ed25519_edge_cases_agree_one_by_one_and_batched(both: Both) -> None:
    native, browser, labels = both
    disagree = [
        label
        for label, a, b in zip(labels, native["single"], browser["single"], strict=True)
        if a != b
    ]
    assert disagree == []
    assert browser["batch"] == browser["single"]
    assert native["batch"] == native["single"]
    # The cases are meaningful: exactly the unmodified signatures verify.
    accepted = {label for label, ok in zip(labels, native["single"], strict=True) if ok}
    assert accepted == {label for label in labels if label.endswith("/valid")}


def test_all_zero_x25519_is_refused_in_both(both: Both) -> None:
    native, browser, _ = both
    assert len(native["x25519"]) == len(SUITE.SMALL_ORDER_POINTS)
    assert browser["x25519"] == native["x25519"]
    assert all(raw_refused and facade == "all-zero" for raw_refused, facade in browser["x25519"])
