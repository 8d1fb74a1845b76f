"""Machine-generated requests against the session's real stack, driven by its own /openapi.json: every operation,
valid and invalid data (schemathesis), each request signed over the exact bytes sent by a client of the role the
operation wants. No answer may be a 5xx, and every answer must conform to the document: status code, content type,
headers and body schema.

Here 20 examples per operation and mode, the same each run, long polls cut to 1 s and listings to 100 lines (a
minute or two); ``make fuzz`` sets ``FUZZ_EXAMPLES`` (500) and ``FUZZ_LONG=1`` (new cases, parameters whole) for
a long run. What it found is listed in docs/security.md ("Fuzzing and property tests")."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import time
from typing import Any

import asyncpg
import msgspec
import pytest
import requests
import schemathesis
from hypothesis import reject
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from channel_client.signing import sign_headers
from core.settings import Settings
from gateway import clients
from tests.conftest import ROOT

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "20"))
LONG = os.environ.get("FUZZ_LONG") == "1"
# The short run's caps: two long polls would take its whole minute, and a reconciliation listing 100,000 keys of
# the session's earlier tests takes schemathesis minutes to check against its schema.
SHORT_CAPS = {"wait": 1.0, "limit": 100.0}
# Each operation is called by a client of the role it serves, so that the fuzzing reaches past the role check.
FUZZERS = {"channel": "fuzz-channel", "draw": "fuzz-draw", "admin": "fuzz-admin", "auditor": "fuzz-auditor"}
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]  # not negative_data_rejection: an upload answers 202 with each invalid invoice `rejected` (SPEC.md), by design


@schemathesis.serializer("application/msgpack")
def msgpack(_ctx: Any, value: Any) -> bytes:
    try:
        return msgspec.msgpack.encode(value)
    except OverflowError:  # an integer msgpack cannot carry (over 64 bits): no request to send
        reject()
        raise


def role_of(path_and_query: str) -> str:
    path = path_and_query.partition("?")[0]
    if path.startswith(("/v1/feed", "/v1/draws")):
        return "draw"
    if path.startswith("/v1/reports") or path == "/v1/admin/reconciliation":
        return "auditor"
    return "admin" if path.startswith("/v1/admin") else "channel"


class Signed(requests.auth.AuthBase):
    """Signs the prepared request: its final method, path with the raw query, and body bytes, with a fresh nonce."""

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        body = r.body if isinstance(r.body, bytes) else (r.body or "").encode()
        path = r.path_url
        client = FUZZERS[role_of(path)]
        r.headers.update(
            sign_headers(
                client, f"{client}-secret", r.method or "GET", path, body, int(time.time()), secrets.token_hex(16)
            )
        )
        return r


# The repo's copy of the document the gateway serves (tests/integration/test_openapi.py holds them equal).
schema = schemathesis.openapi.from_path(ROOT / "docs" / "openapi.json")
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=EXAMPLES,
    with_security_parameters=False,  # signed by Signed, over the bytes actually sent
    deterministic=not LONG,  # make test: the same cases each run; make fuzz: new ones each time
)


@pytest.fixture(scope="module")
def fuzzers(settings: Settings) -> None:
    async def add() -> None:
        pool = await asyncpg.create_pool(settings.stores.database_url, min_size=1, max_size=1)
        try:
            for role, client in FUZZERS.items():
                await clients.add(pool, client, f"{client}-secret", role)
        finally:
            await pool.close()

    asyncio.run(add())


@pytest.fixture(scope="module")
def session(fuzzers: None) -> Any:
    with requests.Session() as s:
        s.auth = Signed()
        yield s


@pytest.fixture(scope="module")
def url(stack: Any) -> str:
    """The single stack's address (``base_url`` is per test, which Hypothesis refuses across its examples)."""
    return f"http://127.0.0.1:{stack.port}"


@schema.parametrize()
def test_every_operation_answers_in_its_schema_and_never_5xx(case: Any, session: Any, url: str) -> None:
    if not LONG and isinstance(case.query, dict):
        for name, cap in SHORT_CAPS.items():
            with contextlib.suppress(TypeError, ValueError):
                if float(case.query.get(name)) > cap:
                    case.query[name] = int(cap)
    case.call_and_validate(base_url=url, session=session, checks=CHECKS, timeout=30)
