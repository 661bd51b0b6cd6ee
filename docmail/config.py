"""Settings, read once from the environment and passed down explicitly."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from docmail.errors import ConfigurationError

DEFAULT_MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024


def _int_env(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(f"{name}={raw!r} is not a whole number", field=name) from None


Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# What the demo and the tests allow: their mail servers listen on this machine.
LOOPBACK: tuple[Network, ...] = (
    ipaddress.ip_network("127.0.0.0/8"),
    ipaddress.ip_network("::1/128"),
)


def _list_env(env: dict[str, str], name: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in env.get(name, "").split(",") if part.strip())


def parse_networks(items: tuple[str, ...], name: str) -> tuple[Network, ...]:
    """CIDR networks (``10.0.0.0/8``, ``fd00::/8``, or one address) from a setting."""
    networks = []
    for item in items:
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ConfigurationError(
                f"{name}: {item!r} is not an IP network; write e.g. 10.0.0.0/8 or 192.0.2.7",
                field=name,
                value=item,
            ) from None
    return tuple(networks)


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("docmail-data")
    database_url: str | None = None
    secret_keys: tuple[str, ...] = ()
    max_attachment_bytes: int = DEFAULT_MAX_ATTACHMENT_BYTES
    smtp_timeout: float = 30.0
    # One SMTP transaction (connect to the reply to DATA) ends by then, whatever the server does.
    smtp_deadline: float = 120.0
    worker_poll_seconds: float = 1.0
    worker_lease_seconds: int = 300
    worker_batch_size: int = 50
    render_timeout_seconds: float = 2.0
    render_max_output_bytes: int = 2 * 1024 * 1024
    metrics_token: str | None = None
    # Internal networks (loopback, private, link-local...) docmail may connect to for
    # mail accounts; none by default (see docmail/adapters/outbound.py).
    outbound_allow: tuple[Network, ...] = ()
    # Proxies whose X-Forwarded-For/-Proto docmail believes (uvicorn's forwarded_allow_ips);
    # none by default: the client is the socket's peer.
    forwarded_allow_ips: tuple[str, ...] = ()
    # Sign-in attempts per address and per client address in the window (web/sessions.py).
    login_attempts: int = 5
    login_window_seconds: int = 600
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def max_request_bytes(self) -> int:
        # base64 grows data by 4/3; leave room for several attachments and the JSON around them.
        return self.max_attachment_bytes * 2 + 1024 * 1024

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'docmail.sqlite3').resolve()}"

    @property
    def key_file(self) -> Path:
        return self.data_dir / "secret.key"

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        keys = tuple(k.strip() for k in env.get("DOCMAIL_SECRET_KEY", "").split(",") if k.strip())
        return cls(
            data_dir=Path(env.get("DOCMAIL_DATA_DIR") or "docmail-data"),
            database_url=env.get("DOCMAIL_DATABASE_URL") or None,
            secret_keys=keys,
            max_attachment_bytes=_int_env(
                env, "DOCMAIL_MAX_ATTACHMENT_BYTES", DEFAULT_MAX_ATTACHMENT_BYTES
            ),
            worker_poll_seconds=float(env.get("DOCMAIL_WORKER_POLL_SECONDS") or 1.0),
            worker_lease_seconds=_int_env(env, "DOCMAIL_WORKER_LEASE_SECONDS", 300),
            metrics_token=env.get("DOCMAIL_METRICS_TOKEN") or None,
            smtp_timeout=float(env.get("DOCMAIL_SMTP_TIMEOUT") or 30.0),
            smtp_deadline=float(env.get("DOCMAIL_SMTP_DEADLINE") or 120.0),
            worker_batch_size=_int_env(env, "DOCMAIL_WORKER_BATCH_SIZE", 50),
            outbound_allow=parse_networks(
                _list_env(env, "DOCMAIL_OUTBOUND_ALLOW"), "DOCMAIL_OUTBOUND_ALLOW"
            ),
            forwarded_allow_ips=_list_env(env, "DOCMAIL_FORWARDED_ALLOW_IPS"),
            login_attempts=_int_env(env, "DOCMAIL_LOGIN_ATTEMPTS", 5),
            login_window_seconds=_int_env(env, "DOCMAIL_LOGIN_WINDOW_SECONDS", 600),
        )
