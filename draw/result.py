"""A draw's published result (format ``prize-draw-result/1``, docs/draw.md): everything needed to re-derive its
winners from the feed, signed with the draw's Ed25519 key. The standard library only (its signature is checked
with draw/ed25519.py; the draw service signs with the ``cryptography`` package, draw/service.py).

The signature is over the canonical JSON (draw/rule.py ``canonical``) of the document without its ``signature``
member, which is ``{"alg": "Ed25519", "public_key": <base64url, as a JWK's x>, "value": <base64url>}``.
"""

from __future__ import annotations

import base64
from typing import Any

from draw import ed25519
from draw.rule import canonical

FORMAT = "prize-draw-result/1"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def document(
    *,
    campaign: str,
    draw: dict[str, Any],
    window: dict[str, Any],
    secret: str,
    randomness: str,
    seed: str,
    rules: dict[str, Any],
    counted: tuple[int, int],
    winners: list[dict[str, Any]],
    drawn_at: str,
) -> dict[str, Any]:
    """The result of ``draw`` (its record at the gateway, GET /v1/draws/{id}), not signed yet. ``window``: its
    ``first_seq``, ``last_seq``, ``first_prev_sha256``, ``last_sha256`` and ``voids_through_seq``; ``counted``:
    the entries considered and the voided keys left out."""
    return {
        "format": FORMAT,
        "campaign": campaign,
        "draw_id": draw["draw_id"],
        "kind": draw["kind"],
        "window": {"from": draw["window"]["from"], "to": draw["window"]["to"], **window},
        "commitment": draw["commitment"],
        "committed_at": draw["committed_at"],
        "feed_head_seq_at_commit": draw["feed_head_seq"],
        "secret": secret,
        "randomness": {"source": draw["randomness"], "value": randomness},
        "seed": seed,
        "rules": rules,
        "entries": counted[0],
        "voided": counted[1],
        "winners": winners,
        "drawn_at": drawn_at,
    }


def signed_text(result: dict[str, Any]) -> bytes:
    """What the signature covers: the canonical JSON of the result without its signature."""
    return canonical({k: v for k, v in result.items() if k != "signature"})


def signature_problem(result: dict[str, Any], public_key: str) -> str | None:
    """Why the result's signature is not ``public_key``'s (base64url), or None when it is."""
    signature = result.get("signature")
    if not isinstance(signature, dict) or signature.get("alg") != "Ed25519":
        return "no Ed25519 signature"
    if signature.get("public_key") != public_key:
        return f"signed with key {signature.get('public_key')}, not the draw's key {public_key}"
    try:
        valid = ed25519.verify(unb64url(public_key), signed_text(result), unb64url(str(signature.get("value"))))
    except ValueError:
        valid = False
    return None if valid else "the signature does not match the result: changed since it was signed"
