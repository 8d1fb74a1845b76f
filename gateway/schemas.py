"""The shapes of the gateway's answers, as msgspec Structs: the OpenAPI document's schemas are generated from them
and from the upload's own models (gateway/model.py), and tests/integration/test_openapi.py checks real answers
against that document. The routes build their answers as they always did (orjson of plain dicts, the fastest
path); these Structs say what those answers are.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from core import reasons
from gateway import codes, rules
from gateway.model import USCC_PATTERN, shown

Time = Annotated[str, shown("UTC, milliseconds: 2026-03-01T20:00:01.250Z", format="date-time")]
Day = Annotated[str, shown("YYYY-MM-DD", format="date")]
Key = Annotated[str, shown("the invoice key: number (digital), code + number (legacy)", pattern="^[0-9]{1,32}$")]
Hex64 = Annotated[str, shown(pattern="^[0-9a-f]{64}$")]
Index = Annotated[int, shown("the invoice's position in the request, from 0", minimum=0)]
Fen = Annotated[int, shown("total incl. tax in fen (1/100 yuan)", minimum=1)]
Seq = Annotated[int, shown("a feed batch's number, from 1", minimum=1)]
Cursor = Annotated[str, shown("opaque: pass it back as given", pattern="^([0-9]+-[0-9]+)?$")]
RequestId = Annotated[str, shown("the request's id, also in X-Request-Id: quote it when asking about a request")]
Status = Annotated[str, shown("the invoice's status", enum=list(reasons.STATUSES))]
UPLOAD_REASONS = [*rules.REASONS, *(r.code for r in reasons.ADMISSION)]
UploadReason = Annotated[str, shown("docs/rules.md", enum=UPLOAD_REASONS)]
LATER_REASONS = [r.code for r in (*reasons.VERIFICATION, *reasons.REVERIFICATION, *reasons.RISK, *reasons.LATER)]
LaterReason = Annotated[str, shown('docs/rules.md, "Reasons decided later"', enum=list(dict.fromkeys(LATER_REASONS)))]
Count = Annotated[int, shown("how many on the day (docs/api.md)")]
Amount = Annotated[int, shown("their total, in fen")]


def _reasons(of: list[str]) -> msgspec.Meta:
    """What a by-reason figure holds: reason code -> count, for the reasons that figure can have."""
    return shown("reason code -> count (docs/rules.md)", propertyNames={"enum": of})


RejectedBy = Annotated[dict[str, int], _reasons(list(rules.REASONS))]
CappedBy = Annotated[dict[str, int], _reasons([r.code for r in reasons.ADMISSION])]
IneligibleBy = Annotated[dict[str, int], _reasons([r.code for r in reasons.ALL if r.status == "ineligible"])]
HeldBy = Annotated[dict[str, int], _reasons([r.code for r in reasons.ALL if r.status == "held"])]


class Problem(msgspec.Struct, frozen=True):
    """An error (RFC 9457): the ``code`` is the machine-readable part (the catalogue: info.x-problem-codes)."""

    type: str
    title: str
    status: int
    code: Annotated[str, shown(enum=[c.name for c in codes.CATALOGUE])]
    detail: str
    request_id: RequestId | None = None


class Accepted(msgspec.Struct, frozen=True, tag_field="status", tag="accepted"):
    """New, and durably queued: never lost afterwards. ``receipt``: docs/receipts.md."""

    index: Index
    key: Key
    receipt: str


class Duplicate(msgspec.Struct, frozen=True, tag_field="status", tag="duplicate"):
    """Another upload got this key first (another channel's; or this channel's own earlier one, which then
    comes with the receipt of that first upload)."""

    index: Index
    key: Key
    receipt: str | None = None


class Rejected(msgspec.Struct, frozen=True, tag_field="status", tag="rejected"):
    """Refused by a rule (docs/rules.md) or a campaign cap (then with its key)."""

    index: Index
    reason: UploadReason
    detail: str
    key: Key | None = None


class RateLimited(msgspec.Struct, frozen=True, tag_field="status", tag="rate_limited"):
    """Its user or device is over its rate: send it again after ``retry_after`` seconds."""

    index: Index
    key: Key
    retry_after: Annotated[int, shown(minimum=1)]


class UploadAnswer(msgspec.Struct, frozen=True):
    """One result per invoice, in the request's order."""

    request_id: RequestId
    results: list[Accepted | Duplicate | Rejected | RateLimited]


class Change(msgspec.Struct, frozen=True):
    status: Status
    at: Time
    reason: LaterReason | None = None


class InvoiceStatus(msgspec.Struct, frozen=True):
    """An invoice's status now, and every change with its time."""

    key: Key
    status: Status
    history: list[Change]
    reason: LaterReason | None = None
    batch_seq: Seq | None = None


PRIZE_EVENTS = ["prize_awarded", "prize_payable", "prize_paid", "prize_withdrawn", "prize_clawback", "prize_expired"]
PrizeId = Annotated[str, shown("<draw id>:<n>", pattern="^[A-Za-z0-9_.-]{1,64}:[0-9]{1,9}$")]
DrawId = Annotated[str, shown(pattern="^[A-Za-z0-9_.-]{1,64}$")]


class Event(msgspec.Struct, frozen=True):
    """A status change of one of the channel's invoices after its 202, or a change of one of its prizes
    (``prize_*``, with its ``prize_id``: GET /v1/prizes; ``reason``: why it was withdrawn or clawed back)."""

    cursor: Cursor
    key: Key
    status: Annotated[str, shown(enum=["verified", "eligible", "ineligible", "held", "reversed", *PRIZE_EVENTS])]
    at: Time
    reason: LaterReason | None = None
    batch_seq: Seq | None = None
    prize_id: PrizeId | None = None


class Events(msgspec.Struct, frozen=True):
    """``next``: where to resume (the last event's cursor, or the ``after`` given when none came)."""

    events: list[Event]
    next: Cursor


class PushedEvent(Event, frozen=True, kw_only=True):
    """An event as a webhook pushes it: the change feed's, with ``id`` (its cursor) to tell a resend."""

    id: Cursor


class Pushed(msgspec.Struct, frozen=True):
    """What a channel's webhook receives (workers/webhook.py): its events, oldest first, at least once each."""

    channel: str
    campaign: str
    events: list[PushedEvent]


class ListedInvoice(msgspec.Struct, frozen=True):
    key: Key
    status: Status
    accepted_at: Time
    issue_date: Day
    amount_fen: Fen
    seller_tax_id: Annotated[str, shown(pattern=USCC_PATTERN)]
    reason: LaterReason | None = None
    batch_seq: Seq | None = None


class Listing(msgspec.Struct, frozen=True):
    """``next``: pass it as ``after`` for the next page; null at the end."""

    invoices: list[ListedInvoice]
    next: Annotated[str, shown(pattern="^[0-9]+-[0-9]+$")] | None


class Reversal(msgspec.Struct, frozen=True):
    """A red-letter invoice (红冲) cancelled this invoice."""

    number: Annotated[str, shown("the cancelled invoice's number", pattern="^([0-9]{20}|[0-9]{8})$")]
    red_number: Annotated[str, shown("the red-letter invoice's number", pattern="^([0-9]{20}|[0-9]{8})$")]
    code: Annotated[str, shown("legacy invoices", pattern="^([0-9]{10}|[01][0-9]{11})$")] | None = None
    reason: Annotated[str, shown(maxLength=200)] = ""


class Reversals(msgspec.Struct, frozen=True):
    reversals: list[Reversal]


class ReversalResult(msgspec.Struct, frozen=True):
    """``reversed``: done (a fed invoice gets a void entry); ``recorded``: its invoice is not committed yet, the
    reversal applies when it is (at once if this channel submitted it, else once the tax service confirms it);
    ``pending_confirmation``: another channel submitted the invoice, and the tax service is asked whether it holds
    the red-letter invoice; ``refused``: it does not (send it again with the right ``red_number``);
    ``already_reversed``; ``rejected`` with a detail."""

    index: Index
    status: Annotated[
        str,
        shown(enum=["reversed", "recorded", "pending_confirmation", "refused", "already_reversed", "rejected"]),
    ]
    key: Key | None = None
    reason: Literal["invalid_reversal"] | None = None
    detail: str | None = None


class ReversalsAnswer(msgspec.Struct, frozen=True):
    results: list[ReversalResult]


class FeedEntry(msgspec.Struct, frozen=True):
    """Hashed as its JSON with keys sorted by code point, no spaces, non-ASCII kept (docs/hashing.md)."""

    key: Key
    kind: Literal["add", "void"]
    person: Annotated[str, shown("a keyed hash (HMAC) of the person, never the raw ID", pattern="^[0-9a-f]{64}$")]
    channel: str
    amount_fen: Fen
    issue_date: Day
    seller_tax_id: str
    category: str
    accepted_at: Time


class Batch(msgspec.Struct, frozen=True):
    """``sha256`` = SHA-256 of ``prev_sha256 + "\\n" + entry_1 + "\\n" + ... + entry_n`` (docs/hashing.md)."""

    seq: Seq
    sealed_at: Time
    count: Annotated[int, shown(minimum=1)]
    prev_sha256: Hex64
    sha256: Hex64
    entries: list[FeedEntry]


class Feed(msgspec.Struct, frozen=True):
    batches: list[Batch]


class Jwk(msgspec.Struct, frozen=True):
    """A receipt key (RFC 8037): ``x`` is the raw Ed25519 public key in base64url, without padding."""

    kid: Annotated[str, shown(pattern="^[0-9a-f]{16}$")]
    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    alg: Literal["EdDSA"]
    use: Literal["sig"]
    x: Annotated[str, shown(pattern="^[A-Za-z0-9_-]{43}$")]
    not_before: Time
    not_after: Time | None


class Keys(msgspec.Struct, frozen=True):
    keys: list[Jwk]


class Presented(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    key: Key
    receipt: Annotated[str, shown(maxLength=1000)]


class Verdict(msgspec.Struct, frozen=True):
    valid: bool
    algorithm: Literal["ed25519", "hmac-sha256"]
    kid: str | None
    accepted_at: Time | None


class HeldInvoice(msgspec.Struct, frozen=True):
    key: Key
    channel: str
    reason: LaterReason
    seller_tax_id: str
    amount_fen: Fen
    accepted_at: Time


class Held(msgspec.Struct, frozen=True):
    held: list[HeldInvoice]


class Decision(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    decision: Literal["release", "reject"]
    note: Annotated[str, shown("why, 1 to 500 characters", minLength=1, maxLength=500)]


class Decided(msgspec.Struct, frozen=True):
    key: Key
    status: Literal["verified", "ineligible"]


class SellerReversals(msgspec.Struct, frozen=True):
    seller_tax_id: str
    reversed: Annotated[int, shown(minimum=1)]
    last_at: Time


class ReversalsBySeller(msgspec.Struct, frozen=True):
    days: float
    sellers: list[SellerReversals]


class Alive(msgspec.Struct, frozen=True):
    status: Literal["alive"]


class Readiness(msgspec.Struct, frozen=True):
    ready: bool
    redis: bool
    postgres: bool
    draining: bool


class Figures(msgspec.Struct, frozen=True):
    """The figures of a day, or of one channel or industry that day (docs/api.md says what each counts); the
    prize figures are null until prizes are reported."""

    received: Count
    received_amount_fen: Amount
    accepted: Count
    duplicate: Count
    rejected: Count
    rejected_by_reason: RejectedBy
    rate_limited: Count
    capped: Count
    capped_by_reason: CappedBy
    verified: Count
    eligible: Count
    eligible_amount_fen: Amount
    ineligible: Count
    ineligible_by_reason: IneligibleBy
    held: Count
    held_by_reason: HeldBy
    reversed: Count
    reversed_amount_fen: Amount
    merchants: Annotated[int, shown("distinct sellers among the invoices made eligible", minimum=0)]
    consumers: Annotated[int, shown("distinct persons among the invoices made eligible", minimum=0)]
    prizes_by_tier: Annotated[dict[str, int], shown("prize tier -> prizes awarded")] | None
    prize_amount_fen: Annotated[int, shown("prize money awarded, in fen", minimum=0)] | None
    pull_ratio: Annotated[float, shown("拉动比: eligible amount / prize money", minimum=0)] | None


class ChannelFigures(Figures, frozen=True):
    channel: str


class IndustryFigures(Figures, frozen=True):
    industry: Annotated[str, shown("one of the campaign's eligible categories, or other")]


class ReportDay(Figures, frozen=True):
    """One day (the campaign's time zone): its figures (of ``channel`` alone when one was asked for), then per
    channel and per industry. ``closed``: written to files and sent to the national platform; its figures no
    longer change."""

    date: Day
    closed: bool
    channel: str | None
    by_channel: list[ChannelFigures]
    by_industry: list[IndustryFigures]


class DailyReport(msgspec.Struct, frozen=True):
    """One report per day asked for, in order (a day without any activity has every count 0)."""

    format: Literal["daily-report/1"]
    campaign: str
    timezone: Annotated[str, shown("the campaign's time zone (IANA), whose days these are")]
    channel: str | None
    days: list[ReportDay]


class KeyLine(msgspec.Struct, frozen=True):
    """Where a key accepted that day is, and why (or what is wrong)."""

    key: Annotated[str, shown("the invoice key (an undecodable dead letter: its entry id in parentheses)")]
    where: Literal["invoices", "stream", "recheck", "dead", "claim"]
    status: Status | None
    why: str


class Total(msgspec.Struct, frozen=True):
    """A figure of the daily report against what the data holds."""

    figure: str
    report: int
    found: int
    against: str
    ok: bool


class KeyCounts(msgspec.Struct, frozen=True):
    accepted: Annotated[int, shown(minimum=0)]
    explained: Annotated[int, shown(minimum=0)]
    unexplained: Annotated[int, shown(minimum=0)]


class Window(msgspec.Struct, frozen=True):
    """The day's first instant and the next day's."""

    from_: Time = msgspec.field(name="from")
    to: Time


class Delivery(msgspec.Struct, frozen=True):
    delivered: Annotated[int, shown(minimum=0)]
    pending: Annotated[int, shown(minimum=0)]
    parked: Annotated[int, shown(minimum=0)]


class OutboxRecord(msgspec.Struct, frozen=True):
    """An outbox record not delivered: ``reason`` is the destination's, for a parked one."""

    id: Annotated[int, shown(minimum=1)]
    destination: str
    subject: str
    kind: Literal["invoice", "batch", "report"]
    attempts: Annotated[int, shown(minimum=0)]
    created_at: Time
    reason: str | None = None


class Exports(msgspec.Struct, frozen=True):
    by_destination: dict[str, Delivery]
    pending: list[OutboxRecord]
    parked: list[OutboxRecord]


class Reconciliation(msgspec.Struct, frozen=True):
    """``ok``: nothing is unexplained and every total matches. The lists hold at most ``limit`` keys each;
    ``where`` counts the explained keys by place and status."""

    date: Day
    timezone: str
    window: Window
    ok: bool
    keys: KeyCounts
    where: Annotated[dict[str, int], shown(propertyNames={"pattern": "^(invoices|stream|recheck|dead|claim)/"})]
    unexplained: list[KeyLine]
    explained: list[KeyLine]
    totals: list[Total]
    outbox: Exports


class DrawWindow(msgspec.Struct, frozen=True):
    """The draw's window: the batches sealed from ``from`` (included) to ``to`` (excluded)."""

    from_: Annotated[str, shown("with its time zone", format="date-time")] = msgspec.field(name="from")
    to: Annotated[str, shown("with its time zone", format="date-time")]


class DrawCommit(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A draw's commitment (docs/draw.md): before its window closes (an instant draw's: opens)."""

    draw_id: DrawId
    kind: Literal["periodic", "instant"]
    window: DrawWindow
    commitment: Annotated[str, shown("hex SHA-256 of the draw's secret (32 random bytes)", pattern="^[0-9a-f]{64}$")]
    public_key: Annotated[str, shown("the draw's Ed25519 key, base64url (a JWK's x)", pattern="^[A-Za-z0-9_-]{43}$")]
    randomness: Annotated[str, shown("the public randomness the seed will take, named now", maxLength=200)] = ""


class DrawRecord(msgspec.Struct, frozen=True):
    """A draw as the gateway recorded it: when committed, how far the feed went then, and its signed result once
    published (draw/result.py's document)."""

    draw_id: DrawId
    kind: Literal["periodic", "instant"]
    window: Annotated[dict[str, str], shown("from and to, as committed (UTC)")]
    commitment: Hex64
    public_key: str
    randomness: str
    committed_by: str
    committed_at: Time
    feed_head_seq: Annotated[int, shown("the last batch sealed when the commitment was recorded", minimum=0)]
    result: Annotated[dict[str, Any], shown("the signed result document (docs/draw.md)")] | None
    published_at: Time | None


class AwardIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    prize_id: PrizeId
    tier: Annotated[str, shown("a tier of the campaign's draws of the draw's kind", maxLength=32)]
    amount_fen: Annotated[int, shown("the tier's amount", minimum=1)]
    key: Key


class AwardsIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    awards: Annotated[list[AwardIn], shown(minItems=1, maxItems=1000)]


PrizeStatus = Annotated[str, shown(enum=["awarded", "payable", "paid", "withdrawn", "clawback", "expired"])]


class PrizeState(msgspec.Struct, frozen=True):
    id: PrizeId
    status: PrizeStatus


class AwardsAnswer(msgspec.Struct, frozen=True):
    """Each award's prize as it stands now (withdrawn at once when its invoice was reversed since the draw)."""

    draw_id: DrawId
    prizes: list[PrizeState]


class PrizeItem(msgspec.Struct, frozen=True):
    """A prize won by one of the channel's invoices. ``expires_at``: pay it before (while awarded or payable);
    ``reason``: why it was withdrawn or clawed back."""

    id: PrizeId
    draw_id: DrawId
    tier: str
    amount_fen: Annotated[int, shown(minimum=1)]
    key: Key
    status: PrizeStatus
    awarded_at: Time
    expires_at: Time | None = None
    reason: str | None = None
    paid_at: Time | None = None
    payment_ref: str | None = None


class PrizeList(msgspec.Struct, frozen=True):
    """``next``: pass it as ``after`` for the next page; null at the end."""

    prizes: list[PrizeItem]
    next: PrizeId | None


class PaidIn(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    payment_ref: Annotated[str, shown("the channel's reference of the payment", pattern="^[\\x21-\\x7e]{1,64}$")]


class PaidAnswer(msgspec.Struct, frozen=True):
    id: PrizeId
    status: Literal["paid", "clawback"]
    payment_ref: str


class LedgerTotals(msgspec.Struct, frozen=True):
    """In fen. paid + outstanding + remaining + returned = budget."""

    budget: int
    awarded: int
    withdrawn: int
    expired: int
    paid: int
    clawback: int
    returned: int
    outstanding: Annotated[int, shown("awarded, not yet paid, withdrawn or expired")]
    remaining: Annotated[int, shown("what goes back at the campaign's end")]


class LedgerCheck(msgspec.Struct, frozen=True):
    check: str
    ok: bool
    detail: str


class Movement(msgspec.Struct, frozen=True):
    id: Annotated[int, shown(minimum=1)]
    at: Time
    movement: Literal["budget", "awarded", "withdrawn", "paid", "clawback", "expired", "returned"]
    prize_id: PrizeId | None
    tier: str
    amount_fen: int
    cause: str
    actor: str


class PrizeLedger(msgspec.Struct, frozen=True):
    """The prize ledger (资金台账): totals, by tier, the checks (``ok`` when all hold; gateway/prize_ledger.py) and
    a page of its movements (``next``: pass it as ``after``)."""

    campaign: str
    ok: bool
    totals: LedgerTotals
    by_tier: list[dict[str, Any]]
    checks: list[LedgerCheck]
    movements: list[Movement]
    next: int | None
