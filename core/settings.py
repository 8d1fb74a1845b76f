"""Every setting of every process, read from the environment once, at the entry point, and passed down.

Settings come in groups, one per part (``stores``, ``api``, ``shed``, ``feed``, ``worker``, ``verify``,
``simulator``, ``reports``, ``export``, ``draw``, ...), so that the wiring hands a part its group and nothing else. Each
field is read from ``GATEWAY_<NAME>``, where NAME is the field's name in the environment
(``msgspec.field(name=...)`` where it differs from the attribute: ``settings.shed.high_age_s`` is
``GATEWAY_SHED_HIGH_AGE_S``). An unknown ``GATEWAY_*`` variable is an error rather than silently ignored, so a
typo cannot leave a default in force.
The README's configuration table lists every variable (a test keeps the two equal).

A command run by hand beside ``make run`` needs no variables: when the process environment holds no
``GATEWAY_*`` variable at all, ``from_env`` reads the ones the dev stack wrote to ``.data/stack.env`` in the
current folder (``NAME=value`` lines, shell-quoted), so ``gateway reconcile`` run from the project folder talks
to the running stack. Any ``GATEWAY_*`` variable in the environment turns the file off entirely: the two are
never mixed.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

PREFIX = "GATEWAY_"
STACK_ENV = Path(".data") / "stack.env"  # where ``make run`` writes its settings, relative to the project folder
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's own variable: where every process writes


class ConfigError(ValueError):
    """A setting or a campaign file is wrong: ``error: <source>: <where>: <what>`` and exit status 2."""

    def __init__(self, source: str, where: str, what: str) -> None:
        self.source, self.where, self.what = source, where, what
        super().__init__(": ".join(p for p in (source, where, what) if p))

    def line(self) -> str:
        return f"error: {self}"


class SettingsError(ConfigError):
    """The environment holds a setting that is unknown or of the wrong type."""


def _f(default: Any, env: str) -> Any:
    """A field whose environment name is ``env`` (after ``GATEWAY_``)."""
    return msgspec.field(default=default, name=env)


class Stores(msgspec.Struct, frozen=True, kw_only=True):
    """Where Redis and PostgreSQL are, and what an acknowledgement waits for (deploy/README.md, "Durability")."""

    redis_url: str = "redis://127.0.0.1:6390/0"
    # A Redis Cluster: ``redis_url`` names any one of its nodes (the client learns the others and the slot map).
    redis_cluster: bool = False
    # Replicas that must have an upload's claims and stream entry before it is answered ``accepted`` (WAIT on the
    # connection that ran the claim script); -1: 1 on a cluster, 0 on a single Redis.
    redis_min_replicas: Annotated[int, msgspec.Meta(ge=-1)] = -1
    # How long that WAIT may take; past it the upload is answered 503 and its claims are left for its retry.
    redis_wait_timeout_ms: Annotated[int, msgspec.Meta(ge=1)] = 200
    database_url: str = "postgresql://gateway@127.0.0.1:5440/gateway"
    # A streaming replica for the feed and status reads ("": the primary, ``database_url``).
    database_read_url: str = ""
    redis_timeout_ms: int = 500
    database_timeout_ms: int = 2000

    def min_replicas(self) -> int:
        """Replicas an acknowledgement waits for, the default resolved."""
        if self.redis_min_replicas >= 0:
            return self.redis_min_replicas
        return 1 if self.redis_cluster else 0


class Secrets(msgspec.Struct, frozen=True, kw_only=True):
    """Keys of the gateway's own signatures: receipts, and the person hash of the feed. No default: the gateway
    refuses to start without a receipt signing key and a person secret (the dev stack sets its own)."""

    # The Ed25519 key that signs receipts (gateway/receipts.py): base64 of its 32 bytes, or a file (PEM or that).
    receipt_signing_key: str = ""
    receipt_signing_key_file: str = ""
    # The HMAC key of receipts of the first format, kept only to verify them (POST /v1/receipts/verify).
    receipt_secret: str = ""
    person_secret: str = ""


class Api(msgspec.Struct, frozen=True, kw_only=True):
    """Requests: their shape, their authentication, the gateway's own calls on their path."""

    max_body_bytes: int = 1024 * 1024
    # At most 3,900: the scripts hand Redis up to 2 values per invoice in one call (the claims' HSET, the
    # limits' MGET), and Redis's Lua unpacks at most 8,000.
    max_invoices: Annotated[int, msgspec.Meta(ge=1, le=3_900)] = 500
    clock_skew_s: int = 300
    nonce_ttl_s: int = 600
    clients_refresh_s: float = 30.0
    # The rate-limit call gets less than other Redis calls: past it the limits fail open (caps and dedup fail
    # closed).
    ratelimit_timeout_ms: int = 50
    # Graceful shutdown (gateway/server.py): after SIGTERM, /readyz answers 503 and the process goes on serving
    # this long before it closes its listener, so load balancers stop sending to it first.
    drain_delay_s: float = 5.0


class Http(msgspec.Struct, frozen=True, kw_only=True):
    """What a gateway process lets a connection hold (gateway/connections.py, gateway/middleware.py): the
    headers' deadline and size, the body's deadline, the connections per process."""

    header_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 10.0
    body_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 20.0
    max_header_bytes: Annotated[int, msgspec.Meta(ge=1024)] = 16 * 1024
    max_connections: Annotated[int, msgspec.Meta(ge=1)] = 1000


class Shed(msgspec.Struct, frozen=True, kw_only=True):
    """Load shedding (ratelimit/shed.py, ratelimit/pipeline.py).

    Requests in flight per process: the limit adapts between ``min_in_flight`` and ``max_in_flight`` to keep the
    slowest request of each 250 ms under ``target_latency_ms`` (0: a fixed limit of ``max_in_flight``). The floor
    is the concurrency the capacity is measured at (8 requests over 2 processes, benchmarks/overload_bench.py):
    on a shared machine, latency rises with other users' load whatever this process admits, and a limit cut
    below that floor lost goodput and fairness without bringing the p99 under the target (measured)."""

    max_in_flight: int = 8
    min_in_flight: int = 4
    target_latency_ms: float = 80.0
    # A request of a channel holding less than its weighted share waits this long for a slot before its 503.
    fair_wait_ms: float = 25.0
    busy_share: float = 0.5
    high_age_s: float = _f(10.0, "shed_high_age_s")
    low_age_s: float = _f(2.0, "shed_low_age_s")
    high_backlog: int = _f(50_000, "shed_high_backlog")
    low_backlog: int = _f(5_000, "shed_low_backlog")
    processes: int = 1  # set by gunicorn's config to its worker count: they share the drain


class Feed(msgspec.Struct, frozen=True, kw_only=True):
    max_limit: int = _f(100, "feed_max_limit")
    max_wait_s: float = _f(30.0, "feed_max_wait_s")


class Worker(msgspec.Struct, frozen=True, kw_only=True):
    """The stream workers and the sealer."""

    batch: int = _f(50, "worker_batch")
    block_ms: int = _f(200, "worker_block_ms")
    # Batches one worker has in flight: the next ones are verified while one commits (workers/overlap.py). 1 by
    # default: on the 2-core machine of benchmarks/ 3 gave no gain above noise (the drain is CPU-bound there), cost
    # about 45 MB a worker, and batches of one worker do not see each other's uncommitted invoices in the risk
    # counts (as two workers' do not). Raise it where the tax service's latency, not CPU, bounds the drain.
    in_flight: Annotated[int, msgspec.Meta(ge=1)] = _f(1, "worker_in_flight")
    # An entry delivered this many times without being committed goes to the dead letters.
    max_deliveries: int = _f(5, "worker_max_deliveries")
    # Entries a worker read but did not acknowledge for this long are taken over by another (it died).
    claim_idle_ms: int = _f(30_000, "worker_claim_idle_ms")
    # Port of a worker's own /metrics (0: none; the dev stack's workers share the gateway's metrics folder).
    metrics_port: int = _f(0, "worker_metrics_port")
    seal_interval_ms: int = 500
    seal_max_entries: int = 1000
    # Committed keys stay in the in-flight hashes this long (dedup/inflight.py).
    inflight_grace_s: float = 30.0
    recheck_lease_s: float = 60.0


class Verify(msgspec.Struct, frozen=True, kw_only=True):
    """The verification client (workers/verify.py)."""

    url: str = _f("http://127.0.0.1:8090", "verify_url")
    concurrency: int = _f(64, "worker_verify_concurrency")
    timeout_ms: int = _f(3000, "verify_timeout_ms")
    # Attempts of one call on 5xx, 429 and timeouts (exponential backoff with jitter from 50 ms).
    call_attempts: int = _f(3, "verify_call_attempts")
    # "Not found" is checked again after these delays (seconds, comma-separated) before it is final: a new
    # invoice reaches the tax system late. Production: hours.
    recheck_s: str = _f("2,10,30", "verify_recheck_s")
    # A verification that keeps failing (after its attempts) is tried again this many times, backing off.
    error_retries: int = _f(5, "verify_error_retries")
    # Circuit breaker: open when this many of the last 20 calls failed, for this long (entries wait meanwhile).
    breaker_failures: int = 10
    breaker_cooldown_s: float = 5.0
    # Calls per second to the tax service, all worker processes together (0: no cap): they share one pace in
    # Redis, so the service never sees more than this however many workers run.
    qps: float = _f(0.0, "verify_qps")
    # How long a verified answer is kept, so that an invoice is verified once (the national platform allows 5
    # checks per invoice a day): redeliveries, crashes and re-judging never ask again.
    cache_s: int = _f(7 * 86400, "verify_cache_s")

    def recheck_delays_s(self) -> list[float]:
        return [float(s) for s in self.recheck_s.split(",") if s.strip()]


class Simulator(msgspec.Struct, frozen=True, kw_only=True):
    """The verification-service simulator: log-normal latency with this median and 99th percentile; beyond its
    QPS it answers 429 (0: no cap)."""

    median_ms: float = _f(5.0, "simulator_median_ms")
    p99_ms: float = _f(40.0, "simulator_p99_ms")
    qps: float = _f(0.0, "simulator_qps")


class Reports(msgspec.Struct, frozen=True, kw_only=True):
    """Daily reports (GET /v1/reports/daily), the closing of days, reconciliation."""

    # Where a closed day's report is written (daily-YYYY-MM-DD.json and .csv).
    dir: str = _f("reports", "reports_dir")
    # A day is closed at this hour (in the campaign's time zone) of the next day, once the streams hold nothing
    # of it: its report is written as files and sent to the national platform, and never changes again.
    close_hour: Annotated[int, msgspec.Meta(ge=0, le=23)] = _f(2, "reports_close_hour")
    max_days: Annotated[int, msgspec.Meta(ge=1)] = _f(366, "reports_max_days")  # the longest from..to range
    # Unexplained keys (and pending or parked records) a reconciliation lists; the rest are counted.
    reconcile_listed: Annotated[int, msgspec.Meta(ge=1)] = _f(100, "reconcile_listed")


class Archive(msgspec.Struct, frozen=True, kw_only=True):
    """Monthly partitions and archives (core/partitions.py, gateway/archive.py, docs/archives.md)."""

    # The workers keep the current month's partitions and this many months' after it created.
    partitions_ahead_months: Annotated[int, msgspec.Meta(ge=1, le=24)] = _f(2, "partitions_ahead_months")
    # Where `gateway archive` writes (a folder per month) and `gateway archive detach` looks for a month's.
    dir: str = _f("archives", "archive_dir")
    # The Ed25519 key that signs archive and hand-over manifests (a PEM file, or base64 of its 32 bytes): its
    # own, not the receipts' (who may sign an archive is not who may sign a receipt).
    signing_key_file: str = _f("", "archive_signing_key_file")


class Export(msgspec.Struct, frozen=True, kw_only=True):
    """The relay to the national monitoring platform (workers/relay.py): batches of records, each request signed
    with ``secret`` as the channels sign theirs, at most ``qps`` requests a second, retried with backoff and
    jitter up to ``backoff_max_s``; a breaker opens when ``breaker_failures`` of the last 20 requests failed."""

    url: str = _f("http://127.0.0.1:8095", "export_url")
    client_id: str = _f("prize-gateway", "export_client_id")
    secret: str = _f("", "export_secret")
    batch: Annotated[int, msgspec.Meta(ge=1, le=1000)] = _f(200, "export_batch")
    qps: Annotated[float, msgspec.Meta(gt=0)] = _f(10.0, "export_qps")
    timeout_ms: Annotated[int, msgspec.Meta(ge=1)] = _f(5000, "export_timeout_ms")
    breaker_failures: Annotated[int, msgspec.Meta(ge=1, le=20)] = _f(5, "export_breaker_failures")
    breaker_cooldown_s: float = _f(10.0, "export_breaker_cooldown_s")
    backoff_max_s: float = _f(30.0, "export_backoff_max_s")
    poll_ms: Annotated[int, msgspec.Meta(ge=1)] = _f(250, "export_poll_ms")  # how often an idle relay looks


class NationalSimulator(msgspec.Struct, frozen=True, kw_only=True):
    """The national platform's simulator (workers/national_simulator.py): log-normal latency, a share of
    requests answered 500 (half of them after the records were stored: a lost answer), 429 past its QPS (0: no
    cap). Outages are started at run time: ``POST /sandbox/control``."""

    median_ms: float = _f(10.0, "national_sim_median_ms")
    p99_ms: float = _f(80.0, "national_sim_p99_ms")
    error_rate: Annotated[float, msgspec.Meta(ge=0, le=1)] = _f(0.0, "national_sim_error_rate")
    qps: float = _f(0.0, "national_sim_qps")


class Console(msgspec.Struct, frozen=True, kw_only=True):
    """The operator console (gateway/console/): staff sessions and logins."""

    # Signs the console's cookies (16+ characters); none: the console is off (its pages answer 404).
    secret: str = _f("", "console_secret")
    # A session unused this long ends; none lasts longer than ``session_max_s`` in all.
    idle_s: Annotated[float, msgspec.Meta(gt=0)] = _f(1800.0, "console_idle_s")
    session_max_s: Annotated[float, msgspec.Meta(gt=0)] = _f(43200.0, "console_session_max_s")
    # This many wrong passwords in a row lock the account for ``lockout_s``.
    lockout_failures: Annotated[int, msgspec.Meta(ge=1)] = _f(5, "console_lockout_failures")
    lockout_s: Annotated[float, msgspec.Meta(gt=0)] = _f(900.0, "console_lockout_s")


class Draw(msgspec.Struct, frozen=True, kw_only=True):
    """The reference draw service (``draw``, draw/service.py): the gateway it calls, as which client (role draw),
    the draw's own Ed25519 signing key (a PEM file; ``draw new-key`` makes one), the folder it keeps each draw's
    secret and result in, and how long after a window's end it waits for the batches sealed just before it."""

    url: str = _f("http://127.0.0.1:8080", "draw_url")
    client_id: str = _f("", "draw_client_id")
    secret: str = _f("", "draw_secret")
    key_file: str = _f("", "draw_key_file")
    dir: str = _f("draws", "draw_dir")
    settle_s: Annotated[float, msgspec.Meta(ge=0)] = _f(5.0, "draw_settle_s")


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    campaign_file: str = "deploy/campaigns/hefei-2026.toml"
    log_level: str = "info"
    # From PROMETHEUS_MULTIPROC_DIR (prometheus_client's own variable, read here once like the rest): where
    # every process of a server writes its metrics, for /metrics to merge ("" outside a multiprocess server).
    metrics_dir: str = ""
    stores: Stores = Stores()
    secrets: Secrets = Secrets()
    api: Api = Api()
    http: Http = Http()
    shed: Shed = Shed()
    feed: Feed = Feed()
    worker: Worker = Worker()
    verify: Verify = Verify()
    simulator: Simulator = Simulator()
    reports: Reports = Reports()
    export: Export = Export()
    archive: Archive = Archive()
    national_simulator: NationalSimulator = NationalSimulator()
    console: Console = Console()
    draw: Draw = Draw()


GROUPS: dict[str, type[msgspec.Struct]] = {
    f.name: f.type
    for f in msgspec.structs.fields(Settings)
    if isinstance(f.type, type) and issubclass(f.type, msgspec.Struct)
}
TOP = ("campaign_file", "log_level")


def variables() -> Iterator[tuple[str, str, str]]:
    """(environment variable, group, attribute) of every setting; the group is "" for a top-level one."""
    for name in TOP:
        yield PREFIX + name.upper(), "", name
    for group, struct in GROUPS.items():
        for f in msgspec.structs.fields(struct):
            yield PREFIX + f.encode_name.upper(), group, f.name


def from_env(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from ``environ`` (the process environment by default: then, if it holds no
    ``GATEWAY_*`` variable, the dev stack's ``.data/stack.env`` in the current folder is read, when there is one).
    Raises ``SettingsError`` naming the variable that is unknown, of the wrong type or out of its range; never
    with the variable's value (it may be a secret)."""
    environ = with_stack_env(os.environ, Path.cwd()) if environ is None else environ
    group_of = {var: group for var, group, _ in variables()}
    top: dict[str, Any] = {"metrics_dir": environ.get(MULTIPROC_DIR, "")}
    groups: dict[str, dict[str, str]] = {g: {} for g in GROUPS}
    for name, value in sorted(environ.items()):
        if not name.startswith(PREFIX):
            continue
        if name not in group_of:
            close = difflib.get_close_matches(name, group_of, n=1, cutoff=0.8)
            hint = f"did you mean {close[0]}?" if close else "the README's configuration table lists them all"
            raise SettingsError(name, "", f"unknown setting ({hint})")
        group = group_of[name]
        (groups[group] if group else top)[name[len(PREFIX) :].lower()] = value
    try:
        for group, values in groups.items():
            top[group] = msgspec.convert(values, GROUPS[group], strict=False)
        settings = msgspec.convert(top, Settings, strict=False)
    except msgspec.ValidationError as exc:
        what, _, path = str(exc).partition(" - at `$.")
        raise SettingsError(PREFIX + path.rstrip("`").split(".")[-1].upper(), "", _plain(what)) from exc
    problem = next(_problems(settings), None)
    if problem is not None:
        raise SettingsError(problem[0], "", problem[1])
    return settings


def with_stack_env(environ: Mapping[str, str], folder: Path) -> Mapping[str, str]:
    """``environ``, with the ``GATEWAY_*`` variables of ``folder/.data/stack.env`` when it has none of its own."""
    path = folder / STACK_ENV
    if any(name.startswith(PREFIX) for name in environ) or not path.is_file():
        return environ
    found: dict[str, str] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            (word,) = shlex.split(line)
        except ValueError:
            word = ""
        name, sep, value = word.partition("=")
        if not sep or not name.startswith(PREFIX):
            raise SettingsError(str(STACK_ENV), f"line {number}", "not a GATEWAY_NAME=value line")
        found[name] = value
    return {**environ, **found}


def stack_env_text(environ: Mapping[str, str]) -> str:
    """The ``GATEWAY_*`` variables of ``environ`` as ``.data/stack.env`` holds them (shell-quoted, so that
    ``set -a; . .data/stack.env`` works too)."""
    lines = [f"{name}={shlex.quote(value)}" for name, value in sorted(environ.items()) if name.startswith(PREFIX)]
    return (
        "# Written by the dev stack (make run) while it runs: the settings of its processes.\n"
        + "\n".join(lines)
        + "\n"
    )


def _plain(what: str) -> str:
    """msgspec's words for a variable that does not convert, in the environment's terms (every value there is
    a string)."""
    if m := re.fullmatch(r"Expected `(\w+)`, got `str`", what):
        return {"int": "not a whole number", "float": "not a number"}.get(m[1], what)
    if m := re.fullmatch(r"Expected `\w+` ([<>]=? .+)", what):
        return f"must be {m[1]}"
    return what


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _problems(settings: Settings) -> Iterator[tuple[str, str]]:
    """Values of the right type that no process could use: found here rather than as a traceback later."""
    if settings.log_level.lower() not in LOG_LEVELS:
        yield PREFIX + "LOG_LEVEL", f"not one of {', '.join(LOG_LEVELS)}"
    try:
        delays = settings.verify.recheck_delays_s()
    except ValueError:
        delays = [-1.0]
    if any(d < 0 for d in delays):
        yield PREFIX + "VERIFY_RECHECK_S", "not a comma-separated list of delays in seconds (2,10,30)"
    stores = settings.stores
    if stores.min_replicas() > 0 and stores.redis_wait_timeout_ms >= stores.redis_timeout_ms:
        yield PREFIX + "REDIS_WAIT_TIMEOUT_MS", "must be below GATEWAY_REDIS_TIMEOUT_MS (the WAIT answers within it)"
    if stores.redis_cluster and not stores.redis_url.startswith(("redis://", "rediss://")):
        yield PREFIX + "REDIS_URL", "a cluster is reached over TCP: redis:// or rediss://"
    schemes = {
        "REDIS_URL": (settings.stores.redis_url, ("redis", "rediss", "unix")),
        "DATABASE_URL": (settings.stores.database_url, ("postgresql", "postgres")),
        "DATABASE_READ_URL": (settings.stores.database_read_url or "postgresql://", ("postgresql", "postgres")),
        "VERIFY_URL": (settings.verify.url, ("http", "https")),
        "EXPORT_URL": (settings.export.url, ("http", "https")),
        "DRAW_URL": (settings.draw.url, ("http", "https")),
    }
    for name, (url, allowed) in schemes.items():
        scheme, sep, _ = url.partition("://")
        if not sep or scheme not in allowed:  # the URL itself is never shown: it may hold a password
            yield PREFIX + name, f"not a URL of scheme {' or '.join(s + '://' for s in allowed)}"


def replace(settings: Settings, **changes: Any) -> Settings:
    """``settings`` with some fields changed, each named as in the environment without ``GATEWAY_`` (lower
    case): ``replace(s, worker_batch=10, inflight_grace_s=0)``. For tests and benchmarks that tune one process."""
    by_name = {var[len(PREFIX) :].lower(): (group, attribute) for var, group, attribute in variables()}
    grouped: dict[str, dict[str, Any]] = {}
    top: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in by_name:
            raise TypeError(f"no setting named {name}")
        group, attribute = by_name[name]
        (grouped.setdefault(group, {}) if group else top)[attribute] = value
    for group, values in grouped.items():
        top[group] = msgspec.structs.replace(getattr(settings, group), **values)
    return msgspec.structs.replace(settings, **top)
