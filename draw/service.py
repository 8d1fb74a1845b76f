"""The reference draw service: a draw as a city's own draw service would run it, through the gateway's public API
only (draw/api.py), with the campaign's prize rules (``[draw]`` of the campaign file) and the draw's own Ed25519
key. docs/draw.md walks through it.

- ``commit``: a new secret (32 random bytes, kept in ``<dir>/<draw id>/secret``, never sent), and its SHA-256
  recorded at the gateway with the window, the draw's public key and the public randomness the seed will take.
- ``run`` (periodic draws): once the window has closed (a batch sealed at or after its end, or the settle time
  passed), reveal: seed = SHA-256(secret, the window's last batch hash, the randomness value); winners by the
  rule (draw/rule.py); awards recorded at the gateway; the result signed, written to ``<dir>/<draw
  id>/result.json`` and published.
- ``follow`` (instant draws): from the window's opening, each batch as it is sealed (long polls), its entries
  decided by the committed secret's seed, the new winners awarded at once; once the window has closed, the
  result published as for a periodic draw.
- ``archive``: the feed as an archive folder of JSON lines, for ``draw verify`` anywhere.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from core.campaign import Campaign, DrawKind
from core.settings import ConfigError, Settings
from draw import feed, rule
from draw.api import Gateway
from draw.result import b64url, document, signed_text

AWARDS_PER_REQUEST = 1000


def load_key(path: str) -> Ed25519PrivateKey:
    """The draw's signing key from its PEM file (GATEWAY_DRAW_KEY_FILE)."""
    if not path:
        raise ConfigError("GATEWAY_DRAW_KEY_FILE", "", "the draw's Ed25519 key (a PEM file: draw new-key makes one)")
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ConfigError("GATEWAY_DRAW_KEY_FILE", "", f"not a readable PEM private key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError("GATEWAY_DRAW_KEY_FILE", "", "not an Ed25519 key")
    return key


def new_key(path: Path) -> Ed25519PrivateKey:
    """A new signing key, written to ``path`` (PEM, readable by its owner only)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pem)
    path.chmod(0o600)
    return key


def public_jwk(key: Ed25519PrivateKey) -> dict[str, str]:
    """The draw key as a JSON Web Key (RFC 8037), what is published for ``draw verify --key``."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "x": b64url(raw)}


def rules(campaign: Campaign, kind: DrawKind) -> dict[str, Any]:
    """The campaign's rules of a draw of ``kind``, as its result states them."""
    if kind == "periodic":
        p = campaign.draw.periodic
        tiers = [{"name": t.name, "count": t.count, "amount_fen": t.amount_fen} for t in p.tiers]
        return {"tiers": tiers, "max_wins_per_person": p.max_wins_per_person, "categories": list(p.categories)}
    i = campaign.draw.instant
    return {
        "tiers": [{"name": t.name, "amount_fen": t.amount_fen, "odds": t.odds} for t in i.tiers],
        "max_wins_per_person": i.max_wins_per_person,
        "categories": list(i.categories),
        "daily_budget_fen": i.daily_budget_fen,
    }


class Service:
    """One draw service: its gateway client, key, folder and campaign."""

    def __init__(self, settings: Settings, campaign: Campaign) -> None:
        d = settings.draw
        if not d.client_id or not d.secret:
            raise ConfigError("GATEWAY_DRAW_CLIENT_ID", "", "the draw service's client id and GATEWAY_DRAW_SECRET")
        self.gateway = Gateway(d.url, d.client_id, d.secret)
        self.folder = Path(d.dir)
        self.key_file = d.key_file
        self.settle_s = d.settle_s
        self.campaign = campaign

    def commit(self, draw_id: str, kind: DrawKind, start: dt.datetime, end: dt.datetime, randomness: str) -> Any:
        """Commit a draw: its secret kept here, its SHA-256 recorded at the gateway; the gateway's record."""
        secret = self._secret(draw_id, create=True)
        body = {
            "draw_id": draw_id,
            "kind": kind,
            "window": {"from": start.isoformat(timespec="milliseconds"), "to": end.isoformat(timespec="milliseconds")},
            "commitment": rule.commitment(secret),
            "public_key": public_jwk(load_key(self.key_file))["x"],
            "randomness": randomness,
        }
        record = self.gateway.call("POST", "/v1/draws", body)
        self._write(draw_id, "draw.json", record)
        return record

    def _secret(self, draw_id: str, create: bool = False) -> str:
        path = self.folder / draw_id / "secret"
        if path.exists():
            return path.read_text().strip()
        if not create:
            raise FileNotFoundError(f"{path}: no secret for draw {draw_id} here (committed elsewhere?)")
        path.parent.mkdir(parents=True, exist_ok=True)
        secret = os.urandom(32).hex()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # written before anything is sent
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        return secret

    def _write(self, draw_id: str, name: str, value: Any) -> Path:
        path = self.folder / draw_id / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return path

    def run(self, draw_id: str, randomness: str = "", wait: bool = True) -> dict[str, Any]:
        """Draw a periodic draw once its window has closed, and publish it; its result."""
        record = self.gateway.call("GET", f"/v1/draws/{draw_id}")
        if record["result"] is not None:
            return dict(record["result"])
        if record["kind"] != "periodic":
            raise ValueError(f"draw {draw_id} is an instant draw: draw follow decides it as it is fed")
        if record["randomness"] and not randomness:
            raise ValueError(f"the draw committed to take randomness ({record['randomness']}): give its value")
        secret = self._secret(draw_id)
        batches = self._after_close(_time(record["window"]["to"]), wait)
        inside = self._window(record, batches)
        seed = rule.periodic_seed(secret, inside[-1]["sha256"], randomness)
        found, considered, voided = rule.winners(
            {
                "draw_id": draw_id,
                "kind": "periodic",
                "seed": seed,
                "rules": rules(self.campaign, "periodic"),
                "window": _span(inside, batches[-1]["seq"]),
            },
            batches,
        )
        doc = self._document(record, batches, inside, secret, randomness, seed, found, (considered, voided))
        return self._publish(record, doc, found)

    def follow(self, draw_id: str) -> dict[str, Any]:
        """Decide an instant draw as its batches are sealed, awarding each winner at once; publish at the end."""
        record = self.gateway.call("GET", f"/v1/draws/{draw_id}")
        if record["result"] is not None:
            return dict(record["result"])
        secret = self._secret(draw_id)
        seed = rule.instant_seed(secret, draw_id)
        r = rules(self.campaign, "instant")
        draw = rule.Instant(draw_id, seed, rule.tiers_of(r), r["max_wins_per_person"], r["daily_budget_fen"])
        start, end = _time(record["window"]["from"]), _time(record["window"]["to"])
        batches: list[dict[str, Any]] = []
        while not self._over(batches, end):
            page = self.gateway.batches(batches[-1]["seq"] if batches else 0, wait_s=self._wait(end))
            batches += page
            new = draw.take(rule.entries(feed.window(page, start, end), r["categories"]))
            self._award(draw_id, new)
        inside = self._window(record, batches)
        doc = self._document(
            record, batches, inside, secret, "", seed, draw.found, (len(rule.entries(inside, r["categories"])), 0)
        )
        return self._publish(record, doc, [])

    def _over(self, batches: list[dict[str, Any]], end: dt.datetime) -> bool:
        return feed.closed(batches, end) or time.time() >= end.timestamp() + self.settle_s

    def _wait(self, end: dt.datetime) -> float:
        return max(0.0, min(30.0, end.timestamp() + self.settle_s - time.time()))

    def _after_close(self, end: dt.datetime, wait: bool) -> list[dict[str, Any]]:
        """The whole feed once the window has closed: a batch sealed at or after its end, or the settle time
        after it passed (every batch sealed before the end has committed by then)."""
        batches = self.gateway.feed()
        while not self._over(batches, end):
            if not wait:
                raise ValueError(f"the window closes at {end.isoformat()}: not drawn yet (or wait for it)")
            batches += self.gateway.batches(batches[-1]["seq"] if batches else 0, wait_s=self._wait(end))
        return batches + self.gateway.feed(batches[-1]["seq"] if batches else 0)

    def _window(self, record: dict[str, Any], batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
        problem = feed.broken_link(batches)
        if problem:
            raise ValueError(f"the feed's chain is broken: {problem}")
        inside = feed.window(batches, _time(record["window"]["from"]), _time(record["window"]["to"]))
        if not inside:
            raise ValueError(f"no batch was sealed in the window of draw {record['draw_id']}: nothing to draw")
        return inside

    def _document(
        self,
        record: dict[str, Any],
        batches: list[dict[str, Any]],
        inside: list[dict[str, Any]],
        secret: str,
        randomness: str,
        seed: str,
        found: list[dict[str, Any]],
        counted: tuple[int, int],
    ) -> dict[str, Any]:
        return document(
            campaign=self.campaign.id,
            draw=record,
            window=_span(inside, batches[-1]["seq"]),
            secret=secret,
            randomness=randomness,
            seed=seed,
            rules=rules(self.campaign, record["kind"]),
            counted=counted,
            winners=found,
            drawn_at=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        )

    def _award(self, draw_id: str, winners: list[dict[str, Any]]) -> None:
        for at in range(0, len(winners), AWARDS_PER_REQUEST):
            awards = [
                {k: w[k] for k in ("prize_id", "tier", "amount_fen", "key")}
                for w in winners[at : at + AWARDS_PER_REQUEST]
            ]
            self.gateway.call("POST", f"/v1/draws/{draw_id}/awards", {"awards": awards})

    def _publish(self, record: dict[str, Any], doc: dict[str, Any], to_award: list[dict[str, Any]]) -> dict[str, Any]:
        """Award the winners, sign the result, keep it here and publish it."""
        draw_id = record["draw_id"]
        self._award(draw_id, to_award)
        key = load_key(self.key_file)
        signature = b64url(key.sign(signed_text(doc)))
        result = {**doc, "signature": {"alg": "Ed25519", "public_key": record["public_key"], "value": signature}}
        self._write(draw_id, "result.json", result)
        self.gateway.call("POST", f"/v1/draws/{draw_id}/result", result)
        return result

    def archive(self, out: Path) -> Path:
        """The whole feed as an archive folder (one JSON-lines file), for ``draw verify --feed``."""
        return feed.write_folder(out, self.gateway.feed())


def _time(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def _span(inside: list[dict[str, Any]], head: int) -> dict[str, Any]:
    """The window's batches as a result names them; ``head``: the last batch read (voids up to it count)."""
    return {
        "first_seq": inside[0]["seq"],
        "last_seq": inside[-1]["seq"],
        "first_prev_sha256": inside[0]["prev_sha256"],
        "last_sha256": inside[-1]["sha256"],
        "voids_through_seq": head,
    }
