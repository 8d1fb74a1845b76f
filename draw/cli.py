"""``draw``: the reference draw service's commands, and ``draw verify`` for anyone who checks a draw.

    draw new-key [--out FILE]           the draw's Ed25519 signing key (PEM); prints its public key (JWK)
    draw public-key                     the public key of GATEWAY_DRAW_KEY_FILE (JWK), to publish
    draw commit ID --to T [--from T] [--kind periodic|instant] [--randomness SOURCE]
    draw run ID [--randomness-value V]  a periodic draw, once its window has closed
    draw follow ID                      an instant draw, decided as it is fed
    draw archive --out DIR              the feed as JSON lines, for verify
    draw verify --result FILE (--feed DIR | --api URL --client-id ID --secret S) [--key JWK]

``verify`` runs on the standard library alone (``python -S -m draw verify ...`` from a copy of this folder):
nothing else is imported until another command is run. The service's commands read the settings as every
command of the project does (GATEWAY_DRAW_*, GATEWAY_CAMPAIGN_FILE; beside ``make run``, its .data/stack.env).
Exit status: 0 done (verify: the draw holds), 1 refused or a difference found, 2 a configuration error.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
from pathlib import Path
from typing import Any

from draw import feed
from draw.api import ApiError, Gateway
from draw.verify import verify


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="draw", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    key = sub.add_parser("new-key", help="make the draw's Ed25519 signing key; print its public key")
    key.add_argument("--out", type=Path, help="the PEM file (default: GATEWAY_DRAW_KEY_FILE)")
    sub.add_parser("public-key", help="print the draw key's public key (JWK), to publish")
    commit = sub.add_parser("commit", help="commit a draw's seed before its window closes")
    commit.add_argument("draw_id")
    commit.add_argument("--kind", choices=("periodic", "instant"), default="periodic")
    commit.add_argument("--from", dest="start", help="window start: ISO time, or +N[smhd] from now (default: now)")
    commit.add_argument("--to", dest="end", required=True, help="window end: ISO time, or +N[smhd] from now")
    commit.add_argument("--randomness", default="", help="the public randomness the seed will take (a drand round)")
    run = sub.add_parser("run", help="draw a periodic draw once its window has closed, and publish it")
    run.add_argument("draw_id")
    run.add_argument("--randomness-value", default="", help="the value of the randomness named at commit")
    run.add_argument("--no-wait", action="store_true", help="refuse rather than wait for the window to close")
    follow = sub.add_parser("follow", help="decide an instant draw as its batches are sealed, then publish it")
    follow.add_argument("draw_id")
    archive = sub.add_parser("archive", help="write the whole feed as an archive folder of JSON lines")
    archive.add_argument("--out", type=Path, required=True)
    check = sub.add_parser("verify", help="re-derive a published draw from the feed (standard library only)")
    check.add_argument("--result", type=Path, help="the result document (else --draw ID with --api)")
    check.add_argument("--draw", help="with --api: the draw whose published result to check")
    check.add_argument("--feed", type=Path, help="an archive folder of JSON lines")
    check.add_argument("--api", help="the gateway's URL, to read the feed and the draw's record from")
    check.add_argument("--client-id", default="")
    check.add_argument("--secret", default="")
    check.add_argument(
        "--key",
        help="the draw's public key: a JWK file, or its x (base64url; give it as --key=X, as X may begin with -)",
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "verify":
            return _verify(args)
        from core.cli import entry_point  # the service's commands: the project's settings, and what they need

        return int(entry_point(lambda _: _service(args))(None))
    except ApiError as exc:
        print(f"error: the gateway refused: {exc}", file=sys.stderr)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
    return 1


def _verify(args: argparse.Namespace) -> int:
    """Load the result, the feed and the key; print what verify found; 0 when the draw holds."""
    gateway = Gateway(args.api, args.client_id, args.secret) if args.api else None
    recorded = None
    if gateway is not None and (args.draw or args.result):
        draw_id = args.draw or json.loads(args.result.read_text(encoding="utf-8"))["draw_id"]
        recorded = gateway.call("GET", f"/v1/draws/{draw_id}")
    if args.result:
        result = json.loads(args.result.read_text(encoding="utf-8"))
    elif recorded is not None and recorded["result"] is not None:
        result = recorded["result"]
    else:
        print("error: give --result FILE, or --draw ID of a published draw with --api", file=sys.stderr)
        return 2
    if args.feed:
        batches = feed.read_folder(args.feed)
    elif gateway is not None:
        batches = gateway.feed()
    else:
        print("error: give the feed: --feed DIR, or --api URL with --client-id and --secret", file=sys.stderr)
        return 2
    verdict = verify(result, batches, _public_key(args.key), recorded)
    print("\n".join(verdict.lines))
    return 0 if verdict.problem is None else 1


def _public_key(given: str | None) -> str | None:
    if given is None:
        return None
    path = Path(given)
    if path.is_file():
        jwk: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return str(jwk["x"])
    return given


RELATIVE = re.compile(r"\+([0-9]+(?:\.[0-9]+)?)([smhd])")


def when(text: str | None, now: dt.datetime) -> dt.datetime:
    """An ISO time with its zone, or ``+N`` seconds, minutes, hours or days from ``now``."""
    if text is None:
        return now
    m = RELATIVE.fullmatch(text)
    if m:
        return now + dt.timedelta(seconds=float(m[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m[2]])
    found = dt.datetime.fromisoformat(text)
    if found.tzinfo is None:
        raise ValueError(f"{text}: a time with its zone (2026-03-09T00:00:00+08:00), or +N[smhd]")
    return found


def _service(args: argparse.Namespace) -> int:
    from core import campaign as campaigns
    from core.settings import from_env
    from draw import service

    settings = from_env()
    if args.command == "new-key":
        out = args.out or settings.draw.key_file
        if not out:
            raise ValueError("where to write it: --out FILE, or GATEWAY_DRAW_KEY_FILE")
        print(json.dumps(service.public_jwk(service.new_key(Path(out)))))
        return 0
    if args.command == "public-key":
        print(json.dumps(service.public_jwk(service.load_key(settings.draw.key_file))))
        return 0
    s = service.Service(settings, campaigns.load(settings.campaign_file))
    if args.command == "commit":
        now = dt.datetime.now(dt.UTC)
        record = s.commit(args.draw_id, args.kind, when(args.start, now), when(args.end, now), args.randomness)
        print(json.dumps(record, ensure_ascii=False, indent=2))
    elif args.command in ("run", "follow"):
        result = (
            s.run(args.draw_id, args.randomness_value, not args.no_wait)
            if args.command == "run"
            else s.follow(args.draw_id)
        )
        print(f"draw {result['draw_id']}: {len(result['winners'])} winners, seed {result['seed']}")
        for w in result["winners"]:
            print(f"  {w['prize_id']:16} {w['tier']:10} {w['amount_fen']:>8} fen  {w['key']}")
        print(f"result: {s.folder / result['draw_id'] / 'result.json'} (published at the gateway)")
    else:
        print(f"written: {s.archive(args.out)}")
    return 0
