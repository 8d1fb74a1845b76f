"""docs/vectors/*.json are what the code produces: the signatures (the gateway's check, channel_client's
signing and the relay's), the feed's canonical text and chain, and receipts (issued, and verified by both sides)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import channel_client
from core import feed
from core import signing as core_signing
from gateway import receipts, signing

VECTORS = Path(__file__).resolve().parent.parent.parent / "docs" / "vectors"


def load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text())


SIGNING = load("signing.json")["cases"]
FEED = load("feed.json")
RECEIPTS = load("receipts.json")


@pytest.mark.parametrize("case", SIGNING, ids=[c["name"] for c in SIGNING])
def test_signatures(case: dict[str, Any]) -> None:
    body = base64.b64decode(case["body_base64"])
    assert body == case["body_utf8"].encode() and hashlib.sha256(body).hexdigest() == case["body_sha256"]
    canonical = signing.canonical_string(case["method"], case["path_and_query"], case["timestamp"], case["nonce"], body)
    assert canonical == case["canonical_string"]
    assert signing.signature_matches(case["secret"], canonical, case["signature"])
    args = (case["client_id"], case["secret"], case["method"], case["path_and_query"], body, int(case["timestamp"]))
    assert channel_client.sign_headers(*args, case["nonce"]) == case["headers"]
    assert core_signing.sign_headers(*args, case["nonce"]) == case["headers"]  # the relay's, to the national platform


@pytest.mark.parametrize("case", FEED["canonical_json"], ids=[c["name"] for c in FEED["canonical_json"]])
def test_canonical_json(case: dict[str, Any]) -> None:
    assert feed.text(case["object"]) == case["text"]
    assert case["text"].encode().hex() == case["utf8_hex"]
    assert json.dumps(case["object"], sort_keys=True, separators=(",", ":"), ensure_ascii=False) == case["text"]


def test_the_chain() -> None:
    prev = feed.GENESIS
    for batch in FEED["chain"]:
        assert batch["prev_sha256"] == prev
        texts = [feed.text(e) for e in batch["entries"]]
        assert texts == batch["entry_texts"]
        assert "\n".join([prev, *texts]) == batch["hashed_text"]
        assert (
            feed.batch_sha256(prev, texts)
            == batch["sha256"]
            == hashlib.sha256(batch["hashed_text"].encode()).hexdigest()
        )
        prev = batch["sha256"]


SIGNER = receipts.Signer(Ed25519PrivateKey.from_private_bytes(bytes.fromhex(RECEIPTS["test_private_key_seed_hex"])))
PUBLISHED = {RECEIPTS["kid"]: (bytes.fromhex(RECEIPTS["public_key_hex"]), "2026-01-01T00:00:00.000Z", None)}


def test_the_receipt_key() -> None:
    assert SIGNER.kid == RECEIPTS["kid"] and SIGNER.public_raw.hex() == RECEIPTS["public_key_hex"]
    assert receipts.unb64url(RECEIPTS["public_key_jwk_x"]) == SIGNER.public_raw
    assert RECEIPTS["public_key_x509_der_hex"].endswith(RECEIPTS["public_key_hex"])


@pytest.mark.parametrize("tree", RECEIPTS["trees"], ids=[f"{len(t['keys'])} keys" for t in RECEIPTS["trees"]])
def test_receipts_are_issued_and_verified_as_the_vectors_say(tree: dict[str, Any]) -> None:
    root, paths = receipts.tree(tree["keys"])
    assert [receipts.leaf(k).hex() for k in tree["keys"]] == tree["leaves"]
    assert root.hex() == tree["root"] and [p.hex() for p in paths] == tree["paths_hex"]
    signed = receipts.signed_text(SIGNER.kid, tree["channel"], tree["accepted_at_ms"], root).decode()
    assert signed == tree["signed_text"]
    issued = SIGNER.receipts(tree["channel"], [(k, tree["accepted_at_ms"]) for k in tree["keys"]])
    assert [issued[k] for k in tree["keys"]] == tree["receipts"]
    for key, receipt in zip(tree["keys"], tree["receipts"], strict=True):
        assert receipts.verify(receipt, key, tree["channel"], {SIGNER.kid: SIGNER.public_raw}, "").valid
        verdict = channel_client.verify(receipt, key, tree["channel"], PUBLISHED)
        assert verdict.valid and verdict.accepted_at_ms == tree["accepted_at_ms"]


@pytest.mark.parametrize("case", RECEIPTS["invalid"], ids=[c["why"] for c in RECEIPTS["invalid"]])
def test_altered_receipts_are_refused_by_both_sides(case: dict[str, Any]) -> None:
    assert not receipts.verify(case["receipt"], case["key"], case["channel"], {SIGNER.kid: SIGNER.public_raw}, "").valid
    assert not channel_client.verify(case["receipt"], case["key"], case["channel"], PUBLISHED).valid


def test_receipts_of_the_first_format() -> None:
    old = RECEIPTS["first_format"]
    assert receipts.legacy_receipt(old["secret"], old["key"], old["channel"], old["accepted_at_ms"]) == old["receipt"]
    verdict = receipts.verify(old["receipt"], old["key"], old["channel"], {}, old["secret"])
    assert verdict == receipts.Verdict(True, "hmac-sha256", old["accepted_at_ms"])
