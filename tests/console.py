"""What the console's tests share: staff accounts made with the real command (``gateway add-staff``, the password
on standard input), a held invoice made the way the risk rules hold one, and a plain HTTP client that logs in
and posts forms as a browser does (its cookies, the token of each form)."""

from __future__ import annotations

import html
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from loadtest import sample
from loadtest.client import SignedClient

BIN = Path(sys.executable).parent
PASSWORD = "correct horse battery staple"
TOKEN = re.compile(r'name="token" value="([^"]+)"')
FIGURE = re.compile(r'data-figure="([a-z_]+)" data-value="(-?[0-9]+)"')


def add_staff(stack: Any, name: str, role: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
    """``gateway add-staff NAME --role ROLE``, the password on standard input, with the stack's settings."""
    return subprocess.run(
        [str(BIN / "gateway"), "add-staff", name, "--role", role],
        input=password + "\n",
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def held_invoice(channel: SignedClient, drain: Any, rng: random.Random | None = None) -> str:
    """An invoice uploaded from Beijing, held by the risk rule ``upload_far_from_city`` once drained: its key."""
    rng = rng or random.Random()
    far = {"id": f"u{rng.randrange(10**9)}", "device_id": "d-travel", "location": {"lat": 39.9, "lon": 116.4}}
    answer = channel.upload([sample.invoice(rng, user=far)]).json()["results"][0]
    assert answer["status"] == "accepted", answer
    drain()
    return str(answer["key"])


class Console:
    """A member of staff's browser, without the browser: cookies kept, each form's token read from its page."""

    def __init__(self, base_url: str) -> None:
        self.http = httpx.Client(base_url=base_url, follow_redirects=False, timeout=30)
        self.token = ""

    def __enter__(self) -> Console:
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()

    def login(self, name: str, password: str = PASSWORD) -> httpx.Response:
        self.get("/console/login")
        resp = self.http.post("/console/login", data={"token": self.token, "name": name, "password": password})
        if resp.status_code == 303:
            self.get("/console/today")  # the session's own token
        return resp

    def get(self, path: str, **params: str) -> httpx.Response:
        resp = self.http.get(path, params=params or None)
        found = TOKEN.search(resp.text)
        if found:
            self.token = html.unescape(found[1])
        return resp

    def post(self, path: str, data: dict[str, Any], token: bool = True) -> httpx.Response:
        form = {**data, "token": self.token} if token else data
        return self.http.post(path, data=form)


def figures(page: str) -> dict[str, int]:
    """The figures a page shows with their exact values (``data-figure`` and ``data-value``)."""
    return {name: int(value) for name, value in FIGURE.findall(page)}
