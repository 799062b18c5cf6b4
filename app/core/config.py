"""Settings read from environment variables and validated at start-up."""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field

MIN_SECRET_BYTES = 32
DEV_SECRET = "dev-only-secret-do-not-use-in-production-0123456789"
DEV_DRAW_KEY = "dev-only-draw-key-do-not-use-in-production-0123456"
DEV_ARCHIVE_URL = "./var/archive"  # the ledger archive in dev mode (LEDGER_ARCHIVE_URL)


MIN_METRICS_TOKEN_BYTES = 16


class ConfigError(Exception):
    """A setting is missing or invalid; the message is one line for the operator."""


def _metrics_token(env: Mapping[str, str]) -> str:
    token = env.get("METRICS_TOKEN", "")
    if token and len(token.encode()) < MIN_METRICS_TOKEN_BYTES:
        raise ConfigError(
            f"METRICS_TOKEN is too short: at least {MIN_METRICS_TOKEN_BYTES} bytes "
            "(e.g. `openssl rand -hex 16`)"
        )
    return token


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    value = _float(env, name, default)
    if value <= 0:
        raise ConfigError(f"{name} must be > 0, got {value}")
    return value


def _log_format(env: Mapping[str, str], dev_mode: bool) -> bool:
    raw = env.get("LOG_FORMAT") or ("plain" if dev_mode else "json")
    if raw not in ("json", "plain"):
        raise ConfigError(f"LOG_FORMAT must be json or plain, got {raw!r}")
    return raw == "json"


def _log_level(env: Mapping[str, str]) -> str:
    raw = (env.get("LOG_LEVEL") or "INFO").upper()
    if raw not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError(f"LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR, got {raw!r}")
    return raw


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """A comma-separated list of IP addresses and networks (CIDR), normalized."""
    parts = [part.strip() for part in env.get(name, "").split(",") if part.strip()]
    try:
        return tuple(str(ipaddress.ip_network(part, strict=False)) for part in parts)
    except ValueError as error:
        raise ConfigError(
            f"{name} must list IP addresses or networks (CIDR), comma-separated: {error}"
        ) from None


def _check_key(name: str, key: str) -> None:
    if len(key.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(
            f"{name} is too weak: {len(key.encode())} bytes, at least {MIN_SECRET_BYTES} are "
            "required"
        )


def _draw_key(env: Mapping[str, str], dev_mode: bool) -> str:
    """The raffle draw key: required outside dev (like JWT_SECRET), at least 32 bytes."""
    key = env.get("DRAW_KEY", "")
    if not key:
        if not dev_mode:
            raise ConfigError(
                "DRAW_KEY is not set: export a random key of at least "
                f"{MIN_SECRET_BYTES} bytes for raffle seeds (e.g. `openssl rand -hex 32`)"
            )
        key = DEV_DRAW_KEY
    _check_key("DRAW_KEY", key)
    return key


PLATFORM_STOP_S = 30.0  # a platform kills a process this long after its SIGTERM


def _shutdown_grace(env: Mapping[str, str], default: float) -> float:
    value = _positive(env, "SHUTDOWN_GRACE_SECONDS", default)
    if value > PLATFORM_STOP_S - 5:
        raise ConfigError(
            f"SHUTDOWN_GRACE_SECONDS must leave 5 s of the platform's {PLATFORM_STOP_S:g} s "
            f"to stop in, got {value:g}"
        )
    return value


@dataclass(frozen=True)
class Settings:
    redis_url: str = "redis://127.0.0.1:6379/0"
    queue_redis_url: str = ""
    redis_cluster: bool = False
    redis_max_connections: int = 64
    redis_socket_timeout_s: float = 3.0
    redis_connect_timeout_s: float = 3.0
    redis_pool_timeout_s: float = 5.0
    host: str = "0.0.0.0"
    port: int = 8000
    web_workers: int = 1
    jwt_secret: str = ""
    # Raffle seeds are HMAC-SHA256(draw key, "<instance>:<round>") (app/services/draws.py):
    # never stored until a draw reveals them. Previous keys still draw the rounds committed
    # under them (key rotation).
    draw_key: str = ""
    draw_keys_previous: tuple[str, ...] = field(default_factory=tuple)
    jwt_issuer: str = "jackpot-gateway"
    token_ttl_s: int = 1800
    # Display tokens (POST /authenticate/display): the lifetime when the request names none,
    # and the longest a request may ask for. A lobby page refreshes its token before expiry.
    display_token_ttl_s: int = 900
    display_token_max_ttl_s: int = 3600
    idempotency_ttl_s: int = 86400
    login_max_failures: int = 5
    login_window_s: int = 900
    max_body_bytes: int = 64 * 1024
    # A request body not complete within this is answered 408 (Quart's BODY_TIMEOUT).
    body_timeout_s: float = 10.0
    config_refresh_s: float = 1.0
    update_interval_s: float = 5.0
    events_stream_cap: int = 1000
    events_queue_limit: int = 1000
    events_auth_timeout_s: float = 5.0
    # Application-level heartbeat of GET /events (below the platform router's 55 s idle cut):
    # a Ping every interval; a client silent for interval + timeout is closed with 4408.
    events_ping_interval_s: float = 25.0
    events_pong_timeout_s: float = 10.0
    events_recent_wins: int = 5  # wins of each instance in a snapshot (data.recent_wins)
    # permessage-deflate on websockets: each socket that negotiates it (every browser) keeps
    # a zlib compressor of ~256 KB between messages; off by default (docs/events.md).
    events_compression: bool = False
    raffle_round_retention_days: int = 90
    # The ledger archive (docs/ledger.md): a closed UTC day is exported this many days after
    # it ends, then trimmed from Redis. Outside dev, no URL means no archive (and no trim).
    ledger_retention_days: int = 3
    ledger_archive_url: str = ""
    ledger_job_interval_s: int = 900
    # Days a Terminated instance keeps its players' opt-in records (then the scheduler ends
    # them all, lua/purge_optins-2.lua); 0: at the termination's first scheduler tick.
    optin_retention_days: int = 7
    callback_allowlist: tuple[str, ...] = field(default_factory=tuple)
    # Peers whose X-Forwarded-For is believed (the router's or load balancer's addresses).
    trusted_proxies: tuple[str, ...] = field(default_factory=tuple)
    dev_mode: bool = False
    log_json: bool = True
    log_level: str = "INFO"
    direct_routes: bool = True
    # Bearer token that shows /metrics' per-instance series (empty: never shown).
    metrics_token: str = field(default="", repr=False)

    worker_maintenance_s: int = 30
    async_retry_hours: float = 6.0
    shutdown_grace_s: float = 20.0

    @property
    def queue_url(self) -> str:
        return self.queue_redis_url or self.redis_url

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, dev_mode: bool = False) -> Settings:
        env = os.environ if env is None else env
        dev_mode = dev_mode or _bool(env, "DEV_MODE", False)
        secret = env.get("JWT_SECRET", "")
        if not secret:
            if not dev_mode:
                raise ConfigError(
                    "JWT_SECRET is not set: export a random secret of at least "
                    f"{MIN_SECRET_BYTES} bytes (e.g. `openssl rand -hex 32`)"
                )
            secret = DEV_SECRET
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(
                f"JWT_SECRET is too weak: {len(secret.encode())} bytes, "
                f"at least {MIN_SECRET_BYTES} are required"
            )
        draw_key = _draw_key(env, dev_mode)
        previous = tuple(
            k.strip() for k in env.get("DRAW_KEY_PREVIOUS", "").split(",") if k.strip()
        )
        for key in previous:
            _check_key("DRAW_KEY_PREVIOUS", key)
        redis_url = env.get("REDIS_URL", cls.redis_url)
        if not redis_url.startswith(("redis://", "rediss://", "unix://", "memory://")):
            raise ConfigError(
                f"REDIS_URL must be a redis://, rediss:// or unix:// URL: {redis_url!r}"
            )
        allow = tuple(
            part.strip() for part in env.get("CALLBACK_ALLOWLIST", "").split(",") if part.strip()
        )
        display_ttl, display_max_ttl = _display_ttls(env, cls)
        return cls(
            redis_url=redis_url,
            queue_redis_url=env.get("QUEUE_REDIS_URL", ""),
            redis_cluster=_bool(env, "REDIS_CLUSTER", False),
            redis_max_connections=_int(env, "REDIS_MAX_CONNECTIONS", 64, minimum=1),
            redis_socket_timeout_s=_positive(env, "REDIS_SOCKET_TIMEOUT_SECONDS", 3.0),
            redis_connect_timeout_s=_positive(env, "REDIS_CONNECT_TIMEOUT_SECONDS", 3.0),
            redis_pool_timeout_s=_positive(env, "REDIS_POOL_TIMEOUT_SECONDS", 5.0),
            # Dev mode runs with published demo passwords: this machine only, unless told.
            host=env.get("HOST", "127.0.0.1" if dev_mode else cls.host),
            port=_int(env, "PORT", cls.port, minimum=0),
            web_workers=_int(env, "WEB_CONCURRENCY", cls.web_workers, minimum=1),
            jwt_secret=secret,
            draw_key=draw_key,
            draw_keys_previous=previous,
            jwt_issuer=env.get("JWT_ISSUER", cls.jwt_issuer),
            token_ttl_s=_int(env, "TOKEN_TTL_SECONDS", cls.token_ttl_s, minimum=1),
            display_token_ttl_s=display_ttl,
            display_token_max_ttl_s=display_max_ttl,
            idempotency_ttl_s=_int(env, "IDEMPOTENCY_TTL_SECONDS", cls.idempotency_ttl_s, 1),
            login_max_failures=_int(env, "LOGIN_MAX_FAILURES", cls.login_max_failures, 1),
            login_window_s=_int(env, "LOGIN_WINDOW_SECONDS", cls.login_window_s, 1),
            max_body_bytes=_int(env, "MAX_BODY_BYTES", cls.max_body_bytes, 1024),
            body_timeout_s=_float(env, "BODY_TIMEOUT_SECONDS", cls.body_timeout_s, 0.1),
            config_refresh_s=_float(env, "CONFIG_REFRESH_SECONDS", cls.config_refresh_s),
            update_interval_s=_float(env, "UPDATE_INTERVAL_SECONDS", cls.update_interval_s, 0.1),
            events_stream_cap=_int(env, "EVENTS_STREAM_CAP", cls.events_stream_cap, minimum=1),
            events_queue_limit=_int(env, "EVENTS_QUEUE_LIMIT", cls.events_queue_limit, 1),
            events_auth_timeout_s=_float(
                env, "EVENTS_AUTH_TIMEOUT_SECONDS", cls.events_auth_timeout_s, 0.1
            ),
            events_ping_interval_s=_float(
                env, "EVENTS_PING_INTERVAL_SECONDS", cls.events_ping_interval_s, 0.1
            ),
            events_pong_timeout_s=_float(
                env, "EVENTS_PONG_TIMEOUT_SECONDS", cls.events_pong_timeout_s, 0.1
            ),
            events_recent_wins=_int(env, "EVENTS_RECENT_WINS", cls.events_recent_wins, 0),
            events_compression=_bool(env, "EVENTS_COMPRESSION", cls.events_compression),
            raffle_round_retention_days=_int(
                env, "RAFFLE_ROUND_RETENTION_DAYS", cls.raffle_round_retention_days, minimum=1
            ),
            ledger_retention_days=_int(
                env, "LEDGER_RETENTION_DAYS", cls.ledger_retention_days, minimum=0
            ),
            ledger_archive_url=env.get("LEDGER_ARCHIVE_URL")
            or (DEV_ARCHIVE_URL if dev_mode else ""),
            ledger_job_interval_s=_int(
                env, "LEDGER_JOB_INTERVAL_SECONDS", cls.ledger_job_interval_s, minimum=1
            ),
            optin_retention_days=_int(
                env, "OPTIN_RETENTION_DAYS", cls.optin_retention_days, minimum=0
            ),
            callback_allowlist=allow,
            trusted_proxies=_networks(env, "TRUSTED_PROXIES"),
            dev_mode=dev_mode,
            log_json=_log_format(env, dev_mode),
            log_level=_log_level(env),
            direct_routes=_bool(env, "DIRECT_ROUTES", True),
            metrics_token=_metrics_token(env),
            shutdown_grace_s=_shutdown_grace(env, cls.shutdown_grace_s),
            async_retry_hours=_positive(env, "ASYNC_RETRY_HOURS", cls.async_retry_hours),
            worker_maintenance_s=_int(
                env, "WORKER_MAINTENANCE_SECONDS", cls.worker_maintenance_s, minimum=1
            ),
        )


DISPLAY_TTL_MIN_S = 10
DISPLAY_TTL_CEILING_S = 86400


def _display_ttls(env: Mapping[str, str], defaults: type[Settings]) -> tuple[int, int]:
    """DISPLAY_TOKEN_TTL_SECONDS and DISPLAY_TOKEN_MAX_TTL_SECONDS: 10 s to a day, the
    default within the maximum."""
    ttl = _int(env, "DISPLAY_TOKEN_TTL_SECONDS", defaults.display_token_ttl_s, DISPLAY_TTL_MIN_S)
    longest = _int(
        env, "DISPLAY_TOKEN_MAX_TTL_SECONDS", defaults.display_token_max_ttl_s, DISPLAY_TTL_MIN_S
    )
    if longest > DISPLAY_TTL_CEILING_S:
        raise ConfigError(
            f"DISPLAY_TOKEN_MAX_TTL_SECONDS must be <= {DISPLAY_TTL_CEILING_S}, got {longest}"
        )
    if ttl > longest:
        raise ConfigError(
            f"DISPLAY_TOKEN_TTL_SECONDS ({ttl}) must be <= "
            f"DISPLAY_TOKEN_MAX_TTL_SECONDS ({longest})"
        )
    return ttl, longest


def port_busy(host: str, port: int) -> str | None:
    """Why `host:port` cannot be listened on (checked before anything starts), or None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Hypercorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            busy = error.errno == errno.EADDRINUSE
            reason = "is in use (another server running?)" if busy else f"cannot be used: {error}"
            return (
                f"port {port} on {host} {reason}; choose another with PORT=8001 "
                "(make dev, serve) or --port 8001 (dev)"
            )
    return None
