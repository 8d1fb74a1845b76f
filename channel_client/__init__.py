"""A channel's Python client of the prize-invoice gateway: signs every request, retries what may be retried
(honouring ``Retry-After``), follows the change feed, and verifies receipts offline. It imports nothing of the
gateway: copy the folder into a channel's code base as it is (it needs httpx and cryptography).

    from channel_client import Client

    with Client("http://127.0.0.1:8080", "demo-channel", "demo-channel-secret") as gw:
        answer = gw.upload([invoice]).json()
        for event in gw.follow(after=""):
            ...

docs/channels.md tells the whole story; docs/vectors/ pin what the signatures and receipts must be.
"""

from channel_client.client import Client, Retry
from channel_client.receipts import Verdict, keys_of, verify
from channel_client.signing import canonical_string, sign, sign_headers

__all__ = ["Client", "Retry", "Verdict", "canonical_string", "keys_of", "sign", "sign_headers", "verify"]
