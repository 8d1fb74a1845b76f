"""A campaign's rules, read from its TOML file (deploy/campaigns/), checked whole before anything runs.

``load`` refuses a file with a wrong type, a value out of range or rules that contradict each other, with a
``ConfigError`` that names the file, the place and the problem (``gateway check-campaign FILE`` prints them all).
"""

from __future__ import annotations

import copy
import datetime as dt
import fractions
import re
import tomllib
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from core.settings import ConfigError

Count = Annotated[int, msgspec.Meta(ge=0)]  # 0 turns a risk rule off
Positive = Annotated[int, msgspec.Meta(ge=1)]
Rate = Annotated[float, msgspec.Meta(gt=0)]
Seconds = Annotated[float, msgspec.Meta(ge=0)]
INVOICE_KINDS = ("on_behalf", "fixed_amount", "purchase")
OTHER_INDUSTRY = "other"  # an invoice whose category matches none of the campaign's eligible ones
MAX_EXTENDS = 3  # campaign files one may extend in a chain (``extends``)


class Caps(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    person_daily: Positive
    person_monthly: Positive
    seller_person_monthly: Positive
    timezone: str = "Asia/Shanghai"
    ineligible_returns_slot: bool = True
    # The first month (yyyymm) whose person-month hashes take the compact form (ratelimit/caps.py): a month's
    # hashes keep one form, so the default is the first month no deployment has written yet; a campaign that
    # starts on an empty Redis may give its first month.
    compact_from: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{4}(0[1-9]|1[0-2])$")] = "202701"


class ChannelLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Rate limits of one channel (each a rate and, for the channel's, a burst)."""

    channel_requests_per_s: Rate
    channel_requests_burst: Positive
    channel_invoices_per_s: Rate
    channel_invoices_burst: Positive
    user_invoices_per_minute: Rate
    user_invoices_per_day: Rate
    device_invoices_per_minute: Rate
    device_invoices_per_day: Rate


class Limits(ChannelLimits, frozen=True, kw_only=True):
    """The campaign's rate limits, and per-channel overrides of any of them."""

    channels: dict[str, dict[str, int | float]] = {}

    def of(self, channel: str) -> ChannelLimits:
        base = {f: getattr(self, f) for f in ChannelLimits.__struct_fields__}
        return msgspec.convert({**base, **self.channels.get(channel, {})}, ChannelLimits)


class Shedding(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    default_weight: Rate = 1.0
    weights: dict[str, Rate] = {}


class Dedup(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    expected_invoices: Positive
    false_positive_rate: Annotated[float, msgspec.Meta(gt=0, lt=1)]
    shards: Annotated[int, msgspec.Meta(ge=1, le=99)]  # two digits in the key names' hash tags


class Eligibility(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Rules judged on the verified data (the uploaded data was checked offline at the gateway)."""

    # Industries or tax classification codes eligible: a category matches an entry equal to it or, for a
    # code, starting with it. Empty: every category.
    categories: tuple[str, ...] = ()
    # Whether an invoice whose category neither the channel nor the tax service gave is eligible.
    unknown_category_eligible: bool = True
    # Invoice kinds never eligible: "on_behalf" (代开), "fixed_amount" (定额), "purchase" (收购).
    excluded_kinds: tuple[str, ...] = ("on_behalf", "fixed_amount", "purchase")
    buyer_must_be_person: bool = True

    def industry(self, category: str) -> str:
        """The industry the daily reports count an invoice under: the first of ``categories`` its (uploaded)
        category matches as the eligibility rule matches it, else "other". Bounded by the campaign's list."""
        if category:
            for c in self.categories:
                if category.startswith(c):
                    return c
        return OTHER_INDUSTRY


class Risk(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Risk rules: a hit is "held" for review with its reason, never dropped. A threshold of 0 turns its
    rule off. Counts are over the campaign's invoices accepted in the last ``window_days`` days."""

    blacklist: bool = True  # persons, devices and sellers in the blacklist table (gateway-worker blacklist)
    window_days: Annotated[float, msgspec.Meta(gt=0)] = 30.0
    device_max_persons: Count = 5  # one device used by more persons than this
    seller_min_invoices: Count = 50  # a seller with at least this many invoices ...
    seller_max_persons: Count = 5  # ... all going to at most this many persons
    high_value_fen: Count = 500_000  # invoices of at least this total ...
    high_value_burst: Count = 20  # ... more than this many from one seller within ...
    high_value_window_s: Seconds = 3600.0  # ... this many seconds
    seller_reversals: Count = 10  # a seller with more reversed invoices than this in the window
    # The upload's location, when the channel gives it, must be within this distance of the city (km).
    center_lat: Annotated[float, msgspec.Meta(ge=-90, le=90)] = 0.0
    center_lon: Annotated[float, msgspec.Meta(ge=-180, le=180)] = 0.0
    max_distance_km: Seconds = 0.0


class Uploads(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How strictly an upload is read (docs/rules.md)."""

    # An invoice dated after today (in the caps' time zone) is refused with issue_date_in_future unless true.
    future_issue_dates: bool = False
    # A member an invoice, its user or their location does not define: "refuse" (unknown_field) or "ignore".
    unknown_fields: Literal["refuse", "ignore"] = "refuse"


TierName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{1,32}$")]  # a key in reports and ledgers
DrawKind = Literal["periodic", "instant"]


class PrizeTier(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A periodic draw's tier: ``count`` prizes of ``amount_fen`` each, every draw."""

    name: TierName
    count: Positive
    amount_fen: Positive


class InstantTier(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An instant prize: an entry wins it with ``odds`` (an exact fraction, "1/100") when it is fed."""

    name: TierName
    amount_fen: Positive
    odds: str

    def fraction(self) -> fractions.Fraction:
        """The odds as an exact fraction (ValueError when they are not "p/q" with 0 < p <= q)."""
        return odds_fraction(self.odds)


class Periodic(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Periodic draws over a window of sealed batches: the tiers, walked in this order, top prize first."""

    tiers: tuple[PrizeTier, ...] = ()
    max_wins_per_person: Positive = 1  # per draw
    # Eligible kinds of invoice (categories, or tax classification code prefixes, matched as eligibility matches
    # them); empty: every entry of the feed.
    categories: tuple[str, ...] = ()


class Instant(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Instant draws: each entry fed during the draw's window (a day) wins by its odds, within the budget."""

    tiers: tuple[InstantTier, ...] = ()
    daily_budget_fen: Count = 0  # the most one instant draw (a day) may award
    max_wins_per_person: Positive = 1  # per draw
    categories: tuple[str, ...] = ()


class Draw(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The prizes (docs/draw.md): the campaign's prize money, how long a winner has to be paid, the draws."""

    budget_fen: Count = 0  # every prize of the campaign together; what is not paid is returned at its end
    claim_days: Annotated[float, msgspec.Meta(gt=0)] = 30.0  # a payable prize not paid this long expires
    periodic: Periodic = Periodic()
    instant: Instant = Instant()

    def tier(self, kind: DrawKind, name: str) -> int | None:
        """The amount of tier ``name`` of a draw of ``kind`` (None: the campaign has no such tier)."""
        if kind == "periodic":
            return next((t.amount_fen for t in self.periodic.tiers if t.name == name), None)
        return next((t.amount_fen for t in self.instant.tiers if t.name == name), None)


def odds_fraction(odds: str) -> fractions.Fraction:
    """ "p/q" as an exact fraction in (0, 1]."""
    m = re.fullmatch(r"([0-9]{1,12})/([0-9]{1,12})", odds)
    if m is None or int(m[2]) == 0 or not 0 < int(m[1]) <= int(m[2]):
        raise ValueError(f"odds {odds!r}: p/q with 0 < p <= q (1/100)")
    return fractions.Fraction(int(m[1]), int(m[2]))


class Campaign(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    id: str
    name: str
    starts: dt.date
    ends: dt.date
    seller_divisions: tuple[str, ...]
    invoice_provinces: tuple[str, ...]
    min_amount_fen: Count
    buyer_must_match_real_name: bool = True
    # Seconds an eligible invoice waits before it is sealed into the feed, so that reversals arrive first
    # (pilots hold payouts a few days); 0 for instant draws.
    payout_hold_s: Seconds = 0.0
    # Years the data is kept after each month ends (Hefei: 10 or more): a month's detached partitions may be
    # dropped only after that, and only with a verified archive (gateway/detach.py).
    retention_years: Positive = 10
    # Verified again with the tax service before payout (workers/reverify.py): "all" eligible invoices when their
    # payout hold ends, just before they are sealed (nothing to do without a hold); "winners" each winning
    # invoice before its prize becomes payable; "none".
    reverify: Literal["all", "winners", "none"] = "all"
    uploads: Uploads = Uploads()
    caps: Caps
    limits: Limits
    shedding: Shedding = Shedding()
    dedup: Dedup
    eligibility: Eligibility = Eligibility()
    risk: Risk = Risk()
    draw: Draw = Draw()

    @property
    def reverifies_entries(self) -> bool:
        """Whether each eligible invoice is verified again when its hold ends, before it is sealed."""
        return self.reverify == "all" and self.payout_hold_s > 0


def load(path: str | Path) -> Campaign:
    """Read and check a campaign file; a bad file fails at start (``ConfigError``), never on a request."""
    campaign, problems = read(path)
    if campaign is None or problems:
        where, what = problems[0]
        raise ConfigError(str(path), where, what)
    return campaign


def read(path: str | Path) -> tuple[Campaign | None, list[tuple[str, str]]]:
    """The campaign in ``path`` and every problem found in it, each as (where, what): the file's syntax and
    types first (the first problem stops there), then every rule that contradicts another. ``where`` is a TOML
    path (``caps.person_daily``) or, where the file is not TOML, a line and column."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        relative = "" if Path(path).is_absolute() else f" (relative to {Path.cwd()})"
        return None, [("", f"cannot read the campaign file{relative}: {exc.strerror or exc}")]
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        return None, [(f"line {line}", "not UTF-8 text (a TOML file is UTF-8)")]
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [_not_toml(text, str(exc))]
    try:
        raw = _extended(raw, Path(path))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, ValueError) as exc:
        return None, [("extends", f"cannot read the campaign it extends: {exc}")]
    try:
        campaign = msgspec.convert(raw, Campaign)
    except msgspec.ValidationError as exc:
        return None, [_not_valid(raw, exc)]
    return campaign, contradictions(campaign)


def _extended(raw: dict[str, Any], path: Path, depth: int = 0) -> dict[str, Any]:
    """``raw`` laid over the campaign file its ``extends`` names (relative to its own folder), table by table and
    key by key: a variant of a campaign (its rules on a Redis Cluster, say) names only what differs."""
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw
    if not isinstance(base_name, str) or depth >= MAX_EXTENDS:
        raise ValueError(f"a file name, in a chain of at most {MAX_EXTENDS} files")
    base_path = path.parent / base_name
    return _merged(_extended(tomllib.loads(base_path.read_text()), base_path, depth + 1), raw)


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        below = merged.get(key)
        merged[key] = _merged(below, value) if isinstance(value, dict) and isinstance(below, dict) else value
    return merged


DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?")
KEY = re.compile(r"\s*((?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*'))*)\s*=")
TABLE = re.compile(r"\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(?:#.*)?$")


def _not_toml(text: str, message: str) -> tuple[str, str]:
    """Where and what for a file tomllib refused: a line and column, or, for a date that does not exist
    (``starts = 2026-13-01``, which TOML's grammar reads as a number followed by junk), its key and why."""
    what, _, at = message.partition(" (at ")
    m = re.fullmatch(r"line (\d+), column (\d+)\)", at)
    if m is None:
        return at.rstrip(")"), f"not TOML: {what}"
    line_no, column = int(m[1]), int(m[2])
    lines = text.splitlines()
    line = lines[line_no - 1] if line_no <= len(lines) else ""
    for date in DATE.finditer(line):
        if not date.start() <= column - 1 <= date.end():
            continue
        try:
            dt.date(int(date[1]), int(date[2]), int(date[3]))
            if date[4] is not None:
                dt.time(int(date[4]), int(date[5]), int(date[6] or 0))
        except ValueError as exc:
            bad = f"{date[0]} is not a date ({exc}; line {line_no}, column {date.start() + 1})"
            key = KEY.match(line)
            if key is None:
                return f"line {line_no}, column {date.start() + 1}", f"{date[0]} is not a date ({exc})"
            return _toml_path(lines[: line_no - 1], key[1]), bad
    return f"line {line_no}, column {column}", f"not TOML: {what}"


def _toml_path(before: list[str], key: str) -> str:
    """The dotted path of ``key`` in the table the lines ``before`` it opened last."""
    table = next((m[1] for m in map(TABLE.match, reversed(before)) if m), "")
    return re.sub(r"\s*\.\s*", ".", f"{table}.{key}" if table else key)


def _not_valid(raw: dict[str, Any], exc: msgspec.ValidationError) -> tuple[str, str]:
    """msgspec's refusal as (TOML path, what): dict keys named rather than ``[...]``, a missing or unknown
    field at its own path, and a number written as a string said so."""
    what, _, at = str(exc).partition(" - at `$")
    where = _name_keys(raw, at.rstrip("`"), what)
    if m := re.fullmatch(r"Object (missing required|contains unknown) field `(.+)`", what):
        where = f"{where}.{_key(m[2])}".lstrip(".")
        what = (
            "missing (every campaign sets it)"
            if m[1] == "missing required"
            else "unknown field (misspelt, or in the wrong table?)"
        )
    elif re.fullmatch(r"Expected `(int|float|int \| float)`.*, got `str`", what):
        what += " (a number is written without quotes)"
    elif what == "Expected `bool`, got `str`":
        what += " (true or false, without quotes)"
    return where or "(top)", what


def _name_keys(raw: dict[str, Any], at: str, what: str) -> str:
    """msgspec's path (``.shedding.weights[...]``) as a TOML path with the offending keys named: for each
    ``[...]`` the key whose value alone still fails the same way (``shedding.weights.demo-channel``)."""
    named: list[str] = []
    steps: list[str | int] = []  # the keys and indexes from ``raw`` down to the node
    node: Any = raw
    for field, index in re.findall(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]", at):
        step: str | int | None = field or None
        if index and index != "...":
            step = int(index)
        elif index == "..." and isinstance(node, dict):
            step = next((k for k in node if _fails_alone(raw, steps, k, what)), None)
        if step is None:
            break
        named.append(_key(step) if isinstance(step, str) else f"[{step}]")
        steps.append(step)
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            break
    return ".".join(named).replace(".[", "[")


def _fails_alone(raw: dict[str, Any], steps: list[str | int], key: str, what: str) -> bool:
    """Whether the campaign still fails with ``what`` when the dict at ``steps`` holds ``key`` alone."""
    trial = copy.deepcopy(raw)
    node: Any = trial
    for step in steps:
        node = node[step]
    kept = node[key]
    node.clear()
    node[key] = kept
    try:
        msgspec.convert(trial, Campaign)
    except msgspec.ValidationError as exc:
        return str(exc).startswith(what + " - ")
    return False


def _key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else f'"{name}"'


def contradictions(c: Campaign) -> list[tuple[str, str]]:
    """Rules of a well-typed campaign that cannot all hold, or that no invoice could meet."""
    found: list[tuple[str, str]] = []
    if c.ends < c.starts:
        found.append(("ends", f"the campaign ends ({c.ends}) before it starts ({c.starts})"))
    caps = c.caps
    if caps.person_daily > caps.person_monthly:
        found.append(
            ("caps.person_daily", f"{caps.person_daily} a day is more than person_monthly's {caps.person_monthly}")
        )
    if caps.seller_person_monthly > caps.person_monthly:
        found.append(
            (
                "caps.seller_person_monthly",
                f"{caps.seller_person_monthly} from one seller is more than person_monthly's {caps.person_monthly}"
                " from all",
            )
        )
    try:
        zoneinfo.ZoneInfo(c.caps.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        found.append(("caps.timezone", f"unknown time zone {c.caps.timezone!r}"))
    if not c.seller_divisions or any(
        not (d.isascii() and d.isdigit() and 2 <= len(d) <= 6) for d in c.seller_divisions
    ):
        found.append(("seller_divisions", "one or more division code prefixes, 2 to 6 digits each"))
    if not c.invoice_provinces or any(not (p.isascii() and p.isdigit() and len(p) == 2) for p in c.invoice_provinces):
        found.append(("invoice_provinces", "one or more 2-digit province codes"))
    for kind in c.eligibility.excluded_kinds:
        if kind not in INVOICE_KINDS:
            found.append(("eligibility.excluded_kinds", f"{kind!r} is not one of {', '.join(INVOICE_KINDS)}"))
    if c.risk.max_distance_km > 0 and c.risk.center_lat == 0 and c.risk.center_lon == 0:
        found.append(("risk.max_distance_km", "a distance rule needs the city's center_lat and center_lon"))
    if c.risk.seller_min_invoices and c.risk.seller_max_persons >= c.risk.seller_min_invoices:
        found.append(("risk.seller_max_persons", "at least seller_min_invoices: the rule could never hold"))
    for channel in c.limits.channels:
        try:
            c.limits.of(channel)
        except msgspec.ValidationError as exc:
            what, _, where = str(exc).partition(" - at `$.")
            found.append((f"limits.channels.{channel}.{where.rstrip('`')}".rstrip("."), what))
    return found + _draw_contradictions(c.draw)


def _draw_contradictions(d: Draw) -> list[tuple[str, str]]:
    """Prize rules that cannot hold: tiers without money, odds that are not odds, names used twice."""
    found: list[tuple[str, str]] = []
    names = [t.name for t in d.periodic.tiers] + [t.name for t in d.instant.tiers]
    for name in sorted({n for n in names if names.count(n) > 1}):
        found.append(("draw", f"tier {name!r} is named twice (a tier is one line of the prize ledger)"))
    one_draw = sum(t.count * t.amount_fen for t in d.periodic.tiers)
    if one_draw > d.budget_fen:
        found.append(("draw.budget_fen", f"{d.budget_fen} fen is less than one periodic draw's {one_draw}"))
    if d.instant.daily_budget_fen > d.budget_fen:
        found.append(("draw.instant.daily_budget_fen", f"more than the campaign's budget_fen ({d.budget_fen})"))
    if d.instant.tiers and not d.instant.daily_budget_fen:
        found.append(("draw.instant.daily_budget_fen", "instant tiers need a daily budget"))
    total = fractions.Fraction(0)
    for i, t in enumerate(d.instant.tiers):
        try:
            total += t.fraction()
        except ValueError as exc:
            found.append((f"draw.instant.tiers[{i}].odds", str(exc)))
    if total > 1:
        found.append(("draw.instant.tiers", f"the odds add up to {total}, more than 1"))
    return found
