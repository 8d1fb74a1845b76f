import pytest

from channel_client.signing import sign_headers
from gateway.signing import canonical_string, sign, signature_matches

# Expected values computed with openssl, independently of this code:
#   printf 'POST\n/v1/invoices\n1772366400\nabcdefghijklmnop\n<sha256 of body>' | openssl dgst -sha256 -hmac ...
BODY = b'{"invoices":[]}'
BODY_SHA256 = "0dd3ce96c77eb66ec1d9b08802d4a7fca4770796e89944531ad725923b974468"


def test_canonical_string_is_five_lines_of_the_spec() -> None:
    canonical = canonical_string("post", "/v1/invoices", "1772366400", "abcdefghijklmnop", BODY)
    assert canonical == f"POST\n/v1/invoices\n1772366400\nabcdefghijklmnop\n{BODY_SHA256}"


def test_signature_of_fixed_example_matches_openssl() -> None:
    canonical = canonical_string("POST", "/v1/invoices", "1772366400", "abcdefghijklmnop", BODY)
    assert sign("demo-channel-secret", canonical) == "e5a03def63956b3538ac2c7cd37cec523e48a4055ff5be4909b9000f22520c61"


def test_empty_body_hashes_the_empty_string_and_query_is_kept_raw() -> None:
    canonical = canonical_string("GET", "/v1/feed?after=3&limit=10", "1772366400", "abcdefghijklmnop", b"")
    assert canonical.endswith("\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    assert sign("demo-draw-secret", canonical) == "ab1c5bc9ea237dc314eb395a4438de7c1257359bbedccb005837a0d868576eac"


@pytest.mark.parametrize("change", ["method", "path", "timestamp", "nonce", "body", "secret"])
def test_any_change_breaks_the_signature(change: str) -> None:
    parts = {"method": "POST", "path": "/v1/invoices", "timestamp": "1", "nonce": "n" * 16, "body": BODY}
    good = sign("s", canonical_string(*parts.values()))  # type: ignore[arg-type]
    secret = "s2" if change == "secret" else "s"
    if change != "secret":
        parts[change] = b"{}" if change == "body" else "GET" if change == "method" else "x" * 16
    assert not signature_matches(secret, canonical_string(*parts.values()), good)  # type: ignore[arg-type]


def test_sign_headers_carries_all_four_headers() -> None:
    headers = sign_headers("c", "s", "GET", "/v1/feed", b"", 5, "n" * 16)
    assert set(headers) == {"X-Client-Id", "X-Timestamp", "X-Nonce", "X-Signature"}
    assert headers["X-Signature"] == sign("s", canonical_string("GET", "/v1/feed", "5", "n" * 16, b""))
