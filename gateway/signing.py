"""The request signature of SPEC.md, as the gateway checks it: core/signing.py, re-exported here (the relay signs
its requests to the national platform with it too). (A channel's side, headers included, is
channel_client/signing.py, which stands alone; both are held to docs/vectors/signing.json. Receipts are
gateway/receipts.py; the keyed hash of persons core/hashing.py.)"""

from __future__ import annotations

from core.signing import canonical_string, sign, signature_matches

__all__ = ["canonical_string", "sign", "signature_matches"]
