"""The pure parts of OAuth mail accounts: XOAUTH2 wire format, provider registry, errors."""

from __future__ import annotations

import base64

import pytest
from authlib.integrations.httpx_client import OAuthError

from docmail.adapters.oauth.client import translate_error
from docmail.adapters.oauth.errors import NeedsReauthentication
from docmail.adapters.oauth.providers import GOOGLE, MICROSOFT, ProviderRegistry
from docmail.adapters.smtp.replies import xoauth2_string
from docmail.errors import (
    AuthenticationFailed,
    ConfigurationError,
    TransientDeliveryError,
    ValidationError,
)
from docmail.services.oauth import check_return_to


def test_the_xoauth2_response_names_the_user_and_the_bearer_token() -> None:
    raw = xoauth2_string("ventas@acme.mx", "ya29.token")
    assert raw == "user=ventas@acme.mx\x01auth=Bearer ya29.token\x01\x01"
    assert base64.b64encode(raw.encode()).startswith(b"dXNlcj12ZW50YXNAYWNtZS5teAFhdXRo")


def test_the_providers_default_to_google_and_microsoft_with_offline_access() -> None:
    registry = ProviderRegistry({}, {})
    google, microsoft = registry.get("gmail"), registry.get("microsoft")
    assert google == GOOGLE and microsoft == MICROSOFT
    assert google.scope == "https://mail.google.com/"
    assert google.authorize_params == {"access_type": "offline", "prompt": "consent"}
    assert microsoft.scope == "https://outlook.office.com/SMTP.Send offline_access"
    assert registry.installation_client(google) is None


def test_settings_override_the_environment_which_overrides_the_defaults() -> None:
    env = {"DOCMAIL_GOOGLE_TOKEN_URL": "http://127.0.0.1:1/env", "DOCMAIL_GOOGLE_SMTP_PORT": "2525"}
    extra = {"google_token_url": "http://127.0.0.1:1/extra"}
    google = ProviderRegistry(extra, env).get("gmail")
    assert google.token_url == "http://127.0.0.1:1/extra" and google.smtp_port == 2525
    assert google.authorize_url == GOOGLE.authorize_url


def test_installation_client_credentials_come_from_the_environment() -> None:
    env = {"DOCMAIL_MICROSOFT_CLIENT_ID": "id", "DOCMAIL_MICROSOFT_CLIENT_SECRET": "secret"}
    creds = ProviderRegistry({}, env).installation_client(MICROSOFT)
    assert creds is not None and creds.client_id == "id" and creds.source == "installation"
    assert "secret" not in repr(creds)


def test_a_bad_port_override_and_an_unknown_provider_are_clear_errors() -> None:
    with pytest.raises(ConfigurationError, match="DOCMAIL_GOOGLE_SMTP_PORT"):
        ProviderRegistry({}, {"DOCMAIL_GOOGLE_SMTP_PORT": "x"})
    with pytest.raises(ValidationError, match="not an OAuth provider"):
        ProviderRegistry({}, {}).get("yahoo")


@pytest.mark.parametrize("path", ["/", "/send?document=12", "/documents/3#top"])
def test_local_paths_are_accepted_as_return_to(path: str) -> None:
    assert check_return_to(path) == path


@pytest.mark.parametrize(
    "target", ["https://evil.example", "//evil.example", "/\\evil", "send", "/a\nb"]
)
def test_anything_but_a_local_path_is_refused_as_return_to(target: str) -> None:
    with pytest.raises(ValidationError):
        check_return_to(target)


def test_invalid_grant_means_the_mailbox_must_be_authenticated_again() -> None:
    error = translate_error(
        OAuthError(error="invalid_grant", description="Token has been revoked"),
        GOOGLE,
        "refreshing",
    )
    assert isinstance(error, NeedsReauthentication) and isinstance(error, AuthenticationFailed)
    assert error.message.startswith("needs authentication: ")
    assert "Token has been revoked" in error.message and not error.transient


def test_a_refused_client_is_an_authentication_failure_and_other_errors_are_transient() -> None:
    refused = translate_error(OAuthError(error="invalid_client"), GOOGLE, "refreshing")
    assert type(refused) is AuthenticationFailed
    busy = translate_error(OAuthError(error="temporarily_unavailable"), GOOGLE, "refreshing")
    assert isinstance(busy, TransientDeliveryError)


def test_a_stored_needs_authentication_message_is_not_prefixed_twice() -> None:
    first = NeedsReauthentication("revoked")
    assert NeedsReauthentication(first.message).message == first.message
