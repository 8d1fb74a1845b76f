"""Receipts (gateway/receipts.py): one signature per request, a path per invoice, verifiable offline."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.settings import ConfigError, Secrets
from gateway import receipts
from gateway.receipts import Signer

SIGNER = Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
PUBLIC = {SIGNER.kid: SIGNER.public_raw}
KEYS = [f"2634100000000000{i:04d}" for i in range(7)]


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7])
def test_every_receipt_of_a_request_verifies_for_its_key_channel_and_time(n: int) -> None:
    issued = SIGNER.receipts("demo-channel", [(k, 1772366400123) for k in KEYS[:n]])
    for key, receipt in issued.items():
        verdict = receipts.verify(receipt, key, "demo-channel", PUBLIC, "")
        assert verdict == receipts.Verdict(True, "ed25519", 1772366400123, SIGNER.kid)
        assert not receipts.verify(receipt, key, "demo-channel-2", PUBLIC, "").valid
        other = KEYS[(KEYS.index(key) + 1) % len(KEYS)]
        assert not receipts.verify(receipt, other, "demo-channel", PUBLIC, "").valid
        later = receipt.replace(".1772366400123.", ".1772366400124.")
        assert not receipts.verify(later, key, "demo-channel", PUBLIC, "").valid
    assert len({r.split(".")[3] for r in issued.values()}) == 1  # one signature for the request


def test_one_signature_per_acceptance_time_and_a_resent_request_gets_its_receipts_again() -> None:
    accepted = [(KEYS[0], 1000), (KEYS[1], 2000), (KEYS[2], 1000)]
    issued = SIGNER.receipts("c", accepted)
    assert {r.split(".")[2] for r in issued.values()} == {"1000", "2000"}
    assert SIGNER.receipts("c", accepted) == issued  # Ed25519 is deterministic: the same tree, the same text


def test_an_unknown_key_id_a_broken_path_or_junk_never_verifies_nor_raises() -> None:
    receipt = SIGNER.receipts("c", [(KEYS[0], 1), (KEYS[1], 1)])[KEYS[0]]
    assert not receipts.verify(receipt, KEYS[0], "c", {}, "").valid
    head, path = receipt.rsplit(".", 1)
    for bad in (head + "." + path[:-2], head + ".", "v2.x.y.z.w", "v2..1..", "²." + "0" * 64, "9" * 5000, ""):
        assert not receipts.verify(bad, KEYS[0], "c", PUBLIC, "s" * 16).valid


def test_receipts_of_the_first_format_verify_with_their_secret_only() -> None:
    old = receipts.legacy_receipt("s" * 16, KEYS[0], "c", 1772366400123)
    assert receipts.verify(old, KEYS[0], "c", PUBLIC, "s" * 16) == receipts.Verdict(True, "hmac-sha256", 1772366400123)
    assert not receipts.verify(old, KEYS[0], "c", PUBLIC, "").valid
    assert not receipts.verify(old, KEYS[1], "c", PUBLIC, "s" * 16).valid


def test_the_signing_key_comes_from_base64_or_a_pem_file(tmp_path: object) -> None:
    from pathlib import Path

    folder = Path(str(tmp_path))
    pem = receipts.new_key_pem()
    (folder / "key.pem").write_bytes(pem)
    from_file = receipts.load_signer(Secrets(receipt_signing_key_file=str(folder / "key.pem")))
    from_value = receipts.load_signer(Secrets(receipt_signing_key=receipts.raw_base64(pem)))
    assert from_file.kid == from_value.kid and len(from_file.kid) == 16
    for wrong in (Secrets(), Secrets(receipt_signing_key="x", receipt_signing_key_file="y")):
        with pytest.raises(ConfigError):
            receipts.load_signer(wrong)
    with pytest.raises(ConfigError, match="base64"):
        receipts.load_signer(Secrets(receipt_signing_key=base64.b64encode(b"short").decode()))
