"""The OAuth2 providers docmail can send through, with per-installation overrides.

Each provider is also an account kind ("gmail", "microsoft"). Endpoints and SMTP
servers default to the real ones and can be overridden per installation through
the environment (``DOCMAIL_GOOGLE_TOKEN_URL`` ...) or ``Settings.extra``
(``google_token_url`` ...), which is how tests point them at a local server.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from docmail.errors import ConfigurationError, ValidationError


@dataclass(frozen=True)
class OAuthProvider:
    kind: str  # the account kind, e.g. "gmail"
    prefix: str  # settings prefix, e.g. "google" -> DOCMAIL_GOOGLE_CLIENT_ID
    label: str
    authorize_url: str
    token_url: str
    scope: str
    smtp_host: str
    smtp_port: int = 587
    smtp_security: str = "starttls"
    authorize_params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ClientCredentials:
    client_id: str
    client_secret: str = field(repr=False)
    source: str  # "company" or "installation"


GOOGLE = OAuthProvider(
    kind="gmail",
    prefix="google",
    label="Google",
    authorize_url="https://accounts.google.com/o/oauth2/v2/auth",
    token_url="https://oauth2.googleapis.com/token",  # noqa: S106 - an URL, not a secret
    scope="https://mail.google.com/",
    smtp_host="smtp.gmail.com",
    authorize_params={"access_type": "offline", "prompt": "consent"},
)

MICROSOFT = OAuthProvider(
    kind="microsoft",
    prefix="microsoft",
    label="Microsoft 365",
    authorize_url="https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
    token_url="https://login.microsoftonline.com/common/oauth2/v2.0/token",  # noqa: S106
    scope="https://outlook.office.com/SMTP.Send offline_access",
    smtp_host="smtp.office365.com",
    authorize_params={"prompt": "consent"},
)

DEFAULT_PROVIDERS = (GOOGLE, MICROSOFT)
OAUTH_KINDS = frozenset(p.kind for p in DEFAULT_PROVIDERS)
_OVERRIDABLE = ("authorize_url", "token_url", "scope", "smtp_host", "smtp_port", "smtp_security")


def _lookup(sources: tuple[Mapping[str, str], ...], prefix: str, name: str) -> str | None:
    """First non-empty value of ``prefix_name`` in ``Settings.extra`` or ``DOCMAIL_PREFIX_NAME``."""
    for source in sources:
        for key in (f"{prefix}_{name}", f"DOCMAIL_{prefix}_{name}".upper()):
            value = source.get(key)
            if value:
                return value
    return None


def _overridden(provider: OAuthProvider, sources: tuple[Mapping[str, str], ...]) -> OAuthProvider:
    changes: dict[str, object] = {}
    for name in _OVERRIDABLE:
        value = _lookup(sources, provider.prefix, name)
        if value is None:
            continue
        if name == "smtp_port":
            try:
                changes[name] = int(value)
            except ValueError:
                key = f"DOCMAIL_{provider.prefix}_{name}".upper()
                raise ConfigurationError(f"{key}={value!r} is not a port", field=key) from None
        else:
            changes[name] = value
    return replace(provider, **changes) if changes else provider  # type: ignore[arg-type]


class ProviderRegistry:
    """The providers of one installation (defaults plus overrides) and its client credentials."""

    def __init__(self, extra: Mapping[str, str], env: Mapping[str, str]) -> None:
        self._sources = (extra, env)
        self._providers = {p.kind: _overridden(p, self._sources) for p in DEFAULT_PROVIDERS}

    def get(self, kind: str) -> OAuthProvider:
        provider = self._providers.get(kind)
        if provider is None:
            known = ", ".join(sorted(self._providers))
            raise ValidationError(
                f"{kind!r} is not an OAuth provider; use one of: {known}",
                field="provider",
                value=kind,
            )
        return provider

    def all(self) -> list[OAuthProvider]:
        return list(self._providers.values())

    def installation_client(self, provider: OAuthProvider) -> ClientCredentials | None:
        """Client id/secret from DOCMAIL_GOOGLE_CLIENT_ID/SECRET (or ``extra``), if set."""
        client_id = _lookup(self._sources, provider.prefix, "client_id")
        secret = _lookup(self._sources, provider.prefix, "client_secret")
        if client_id and secret:
            return ClientCredentials(client_id, secret, "installation")
        return None


def installation_registry(extra: Mapping[str, str]) -> ProviderRegistry:
    """The registry from ``Settings.extra`` and the process environment (the installation)."""
    return ProviderRegistry(extra, os.environ)
