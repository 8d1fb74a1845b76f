"""Locust scenarios of a promotion evening: channels pushing invoices, the draw service reading the feed.

    .venv/bin/locust -f loadtest/locustfile.py --headless --host http://127.0.0.1:8080 \\
        --csv .data/locust/evening --html .data/locust/evening.html

Channel users sign every request as a channel does, upload batches (20 to LOAD_BATCH_MAX invoices) and single
invoices of the evening's mix (loadtest/mix.py), send a malformed body now and then, and poll the status of
invoices they had accepted. One draw-service user reads the feed by long poll and checks its hash chain.
The run follows the evening shape of loadtest/evening.py (ramp, peak, plateau, drop).

Only unexpected answers are failures: an upload may get 202, or 429 / 503 with Retry-After; a malformed body
must get 400; each invoice of a 202 must get an answer that fits its kind (mix.wrong_answers).

Environment (defaults: the dev stack):
  LOAD_CHANNELS       "id:secret,id:secret"   the channels' credentials (demo-channel, demo-channel-2)
  LOAD_DRAW           "id:secret"             the draw service's (demo-draw)
  LOAD_BATCH_MAX      largest batch (100)
  LOAD_FEED_WAIT_S    long-poll wait of the draw user (10)
  LOAD_OUTCOMES_FILE  where to write the count of answers by kind of invoice (JSON), at the end
  PROMO_PEAK_USERS, PROMO_SECONDS, PROMO_SPAWN_RATE   the evening shape (loadtest/evening.py)
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
from collections import Counter, deque
from typing import Any

import orjson
from locust import FastHttpUser, LoadTestShape, between, events, task
from locust.contrib.fasthttp import ResponseContextManager

from core.feed import GENESIS, batch_sha256
from loadtest.client import auth_headers
from loadtest.evening import users_at
from loadtest.mix import Mix, Planned, Recent, tally, wrong_answers

log = logging.getLogger("loadtest")
RECENT = Recent()
OUTCOMES: Counter[str] = Counter()
RETRY_STATUSES = (429, 503)
_next_channel = itertools.count()


def credentials(value: str) -> list[tuple[str, str]]:
    return [tuple(pair.split(":", 1)) for pair in value.split(",") if pair]  # type: ignore[misc]


CHANNELS = credentials(
    os.environ.get("LOAD_CHANNELS", "demo-channel:demo-channel-secret,demo-channel-2:demo-channel-2-secret")
)
DRAW = credentials(os.environ.get("LOAD_DRAW", "demo-draw:demo-draw-secret"))[0]
BATCH_MAX = int(os.environ.get("LOAD_BATCH_MAX", "100"))
FEED_WAIT_S = float(os.environ.get("LOAD_FEED_WAIT_S", "10"))


def refused_properly(resp: ResponseContextManager) -> bool:
    """A 429 or 503 that tells the channel when to come back."""
    return resp.status_code in RETRY_STATUSES and resp.headers is not None and bool(resp.headers.get("Retry-After"))


class ChannelUser(FastHttpUser):
    """One of a channel platform's upload workers."""

    weight = 10
    wait_time = between(0.2, 1.0)

    def on_start(self) -> None:
        self.channel, self.secret = CHANNELS[next(_next_channel) % len(CHANNELS)]
        self.rng = random.Random()
        self.mix = Mix(self.rng, RECENT)
        self.mine: deque[str] = deque(maxlen=200)  # keys this user had accepted, to poll
        # One body of the wrong shape first, then now and then (the task below): even a 20 s smoke run checks
        # the 400, which a 1-in-21 task alone left to chance (it was missed in about one short run in four).
        self.upload_malformed()

    def _post(self, body: bytes, name: str) -> ResponseContextManager:
        headers = auth_headers(self.channel, self.secret, "POST", "/v1/invoices", body)
        headers["Content-Type"] = "application/json"
        resp: ResponseContextManager = self.client.post(
            "/v1/invoices",
            data=body,  # type: ignore[arg-type]  # bytes are sent as they are
            headers=headers,
            name=name,
            catch_response=True,
        )
        return resp

    def _upload(self, planned: list[Planned], name: str) -> None:
        body = orjson.dumps({"invoices": [p.invoice for p in planned]})
        with self._post(body, name) as resp:
            if resp.status_code == 202:
                results = orjson.loads(resp.content or b"{}").get("results", [])
                wrong = wrong_answers(planned, results)
                if wrong:
                    resp.failure("; ".join(sorted(set(wrong))[:5]))
                    return
                tally(OUTCOMES, planned, results)
                self._remember(planned, results)
                resp.success()
            elif refused_properly(resp):
                OUTCOMES[f"request {resp.status_code}"] += 1
                resp.success()
            else:
                resp.failure(f"unexpected {resp.status_code}: {(resp.text or '')[:200]}")

    def _remember(self, planned: list[Planned], results: list[dict[str, Any]]) -> None:
        for p, r in zip(planned, results, strict=True):
            if r["status"] == "accepted":
                self.mine.append(r["key"])
                if p.kind in ("valid", "legacy") and self.rng.random() < 0.25:
                    RECENT.add(self.channel, p.invoice)

    @task(8)
    def upload_batch(self) -> None:
        self._upload(
            self.mix.batch(self.channel, self.rng.randint(20, max(20, BATCH_MAX))), "POST /v1/invoices [batch]"
        )

    @task(8)
    def upload_single(self) -> None:
        self._upload([self.mix.draw(self.channel)], "POST /v1/invoices [single]")

    @task(4)
    def poll_status(self) -> None:
        if not self.mine:
            return
        key = self.rng.choice(self.mine)
        path = f"/v1/invoices/{key}"
        headers = auth_headers(self.channel, self.secret, "GET", path)
        with self.client.get(path, headers=headers, name="GET /v1/invoices/{key}", catch_response=True) as resp:
            if resp.status_code == 200 or refused_properly(resp):
                resp.success()
            else:
                resp.failure(f"unexpected {resp.status_code} for an accepted invoice: {(resp.text or '')[:200]}")

    @task(1)
    def upload_malformed(self) -> None:
        """A channel's bug: a body of the wrong shape must be refused whole with 400."""
        with self._post(b'{"invoices": {"number": 1}}', "POST /v1/invoices [malformed]") as resp:
            if resp.status_code == 400 or refused_properly(resp):
                resp.success()
            else:
                resp.failure(f"malformed body answered {resp.status_code}")


class DrawUser(FastHttpUser):
    """The draw service: reads sealed batches by cursor with long polls, and checks the hash chain."""

    fixed_count = 1
    wait_time = between(0.0, 0.1)

    def on_start(self) -> None:
        self.after, self.prev = 0, GENESIS

    @task
    def read_feed(self) -> None:
        path = f"/v1/feed?after={self.after}&limit=10&wait={FEED_WAIT_S:g}"
        headers = auth_headers(*DRAW, "GET", path)
        with self.client.get(path, headers=headers, name="GET /v1/feed (long poll)", catch_response=True) as resp:
            if resp.status_code != 200:
                if not refused_properly(resp):
                    resp.failure(f"unexpected {resp.status_code}: {(resp.text or '')[:200]}")
                return
            for batch in orjson.loads(resp.content or b"{}")["batches"]:
                texts = [
                    json.dumps(e, sort_keys=True, separators=(",", ":"), ensure_ascii=False) for e in batch["entries"]
                ]
                if batch["prev_sha256"] != self.prev or batch_sha256(self.prev, texts) != batch["sha256"]:
                    resp.failure(f"hash chain broken at batch {batch['seq']}")
                    return
                self.after, self.prev = batch["seq"], batch["sha256"]
            resp.success()


class EveningPromotion(LoadTestShape):
    """Ramp, peak, plateau, drop (loadtest/evening.py) over PROMO_SECONDS (600), up to PROMO_PEAK_USERS (40),
    starting PROMO_SPAWN_RATE users a second (default: the peak in 2 s)."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.peak_users = int(os.environ.get("PROMO_PEAK_USERS", "40"))
        self.seconds = float(os.environ.get("PROMO_SECONDS", "600"))
        self.spawn_rate = float(os.environ.get("PROMO_SPAWN_RATE", str(max(1.0, self.peak_users / 2))))

    def tick(self) -> tuple[int, float] | None:
        elapsed_s: float = self.get_run_time()  # type: ignore[no-untyped-call]
        users = users_at(elapsed_s / self.seconds, self.peak_users)
        return None if users is None else (users, self.spawn_rate)


@events.test_stop.add_listener  # type: ignore[untyped-decorator]
def write_outcomes(**_: Any) -> None:
    """The answers by kind of invoice, in the log and (LOAD_OUTCOMES_FILE) as JSON."""
    log.info("answers by kind of invoice: %s", dict(sorted(OUTCOMES.items())))
    path = os.environ.get("LOAD_OUTCOMES_FILE")
    if path:
        with open(path, "w") as f:
            json.dump(dict(sorted(OUTCOMES.items())), f, indent=1, ensure_ascii=False)
