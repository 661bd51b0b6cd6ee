"""Mail accounts: SMTP settings per company, password encrypted at rest and write-only."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from docmail.adapters.db import tables as t
from docmail.adapters.oauth.providers import OAUTH_KINDS, OAuthProvider, installation_registry
from docmail.adapters.outbound import OutboundRefused
from docmail.adapters.ses import SesSettings, SesTransport
from docmail.adapters.smtp.transport import SmtpSettings, SmtpTransport, Transport
from docmail.errors import (
    Conflict,
    DeliveryError,
    NotFound,
    PermissionDenied,
    ValidationError,
)
from docmail.extras import require
from docmail.services import audit
from docmail.services.inputs import AccountIn, AccountPatch
from docmail.services.runtime import Actor, Role, Runtime


def _get(session: Session, actor: Actor, account_id: int) -> t.MailAccount:
    account = session.get(t.MailAccount, account_id)
    if account is None or account.company_id != actor.company_id:
        raise NotFound(f"mail account {account_id} not found", field="account_id", value=account_id)
    return account


def _make_only_default(session: Session, account: t.MailAccount) -> None:
    session.execute(
        update(t.MailAccount)
        .where(t.MailAccount.company_id == account.company_id, t.MailAccount.id != account.id)
        .values(is_default=False)
    )
    account.is_default = True


def _check_name_free(session: Session, company_id: int, name: str, own_id: int | None) -> None:
    clash = session.scalar(
        select(t.MailAccount.id).where(
            t.MailAccount.company_id == company_id, t.MailAccount.name == name
        )
    )
    if clash is not None and clash != own_id:
        raise Conflict(f"a mail account named {name!r} exists", field="name", value=name)


_SES_FIELDS = {"access_key_id", "secret_access_key"}


def _kind_values(runtime: Runtime, data: AccountIn) -> dict[str, Any]:
    """Columns that follow from the kind: an OAuth provider's SMTP server, SES's endpoint."""
    values = data.model_dump(exclude={"password", "retry_policy", *_SES_FIELDS})
    if data.kind in OAUTH_KINDS:
        provider = installation_registry(runtime.settings.extra).get(data.kind)
        given = {name: getattr(data, name) for name in data.model_fields_set}
        _refuse_unpinned(provider, {k: v for k, v in given.items() if v is not None})
        values.update(_pin(provider))
        values["username"] = data.username or data.from_email
    elif data.kind == "ses":
        values["host"] = data.endpoint_url or f"email.{data.region}.amazonaws.com"
        values["port"], values["security"] = 443, "ssl"
        values["username"] = data.access_key_id
    return values


def _check_owner(session: Session, company_id: int, user_id: int | None) -> None:
    if user_id is None:
        return
    member = session.scalar(
        select(t.Membership.id).where(
            t.Membership.company_id == company_id, t.Membership.user_id == user_id
        )
    )
    if member is None:
        raise ValidationError(
            f"user {user_id} is not a member of this company", field="owner_user_id", value=user_id
        )


def create_account(runtime: Runtime, actor: Actor, data: AccountIn) -> t.MailAccount:
    actor.require(Role.ADMIN)
    if data.kind == "smtp" and data.username and not data.password:
        raise ValidationError("password is required when username is given", field="password")
    if data.kind == "ses":
        require("ses", "account kind 'ses'", field="kind")
    if data.kind not in OAUTH_KINDS:  # those send only to their provider's server
        _check_destination(runtime, data.host, data.port, data.endpoint_url)
    secret = data.secret_access_key if data.kind == "ses" else data.password
    with runtime.session() as session:
        _check_name_free(session, actor.company_id, data.name, None)
        _check_owner(session, actor.company_id, data.owner_user_id)
        account = t.MailAccount(company_id=actor.company_id, **_kind_values(runtime, data))
        account.retry_policy = data.retry_policy.model_dump() if data.retry_policy else {}
        if secret:
            account.password_encrypted = runtime.secrets.encrypt(secret)
        session.add(account)
        session.flush()
        audit.record(
            session,
            actor,
            "account.created",
            f"account:{account.id} {account.name}",
            {"kind": account.kind, "host": account.host, "port": account.port},
        )
        has_default = session.scalar(
            select(t.MailAccount.id).where(
                t.MailAccount.company_id == actor.company_id,
                t.MailAccount.is_default.is_(True),
                t.MailAccount.id != account.id,
            )
        )
        if data.is_default or has_default is None:
            _make_only_default(session, account)
    return account


def update_account(
    runtime: Runtime, actor: Actor, account_id: int, patch: AccountPatch
) -> t.MailAccount:
    actor.require(Role.ADMIN)
    # Resolving a name is slow I/O: done before the write transaction, not inside it.
    _check_destination(runtime, patch.host, patch.port, patch.endpoint_url)
    with runtime.session() as session:
        account = _get(session, actor, account_id)
        changes = patch.model_dump(
            exclude_unset=True, exclude={"password", "is_default", "retry_policy", *_SES_FIELDS}
        )
        if "access_key_id" in patch.model_fields_set:
            changes["username"] = patch.access_key_id
        if "secret_access_key" in patch.model_fields_set:
            patch = patch.model_copy(update={"password": patch.secret_access_key})
            patch.model_fields_set.add("password")
        if "owner_user_id" in changes:
            _check_owner(session, actor.company_id, changes["owner_user_id"])
        if "retry_policy" in patch.model_fields_set:
            account.retry_policy = patch.retry_policy.model_dump() if patch.retry_policy else {}
        if "name" in changes:
            _check_name_free(session, actor.company_id, changes["name"], account.id)
        _check_pinned(runtime, account, changes)
        moved = _endpoint_moved(account, changes)
        detail = audit.changed(account, changes)
        for key, value in changes.items():
            setattr(account, key, value)
        if moved and "password" not in patch.model_fields_set:
            _forget_secrets(account)
            detail["login_forgotten"] = True
        if "password" in patch.model_fields_set:
            detail["login_replaced"] = True
        audit.record(
            session, actor, "account.updated", f"account:{account.id} {account.name}", detail
        )
        if "password" in patch.model_fields_set:
            account.password_encrypted = (
                runtime.secrets.encrypt(patch.password) if patch.password else None
            )
        if patch.is_default:
            _make_only_default(session, account)
        if patch.paused is False:
            account.pause_reason = None
    return account


def _check_destination(
    runtime: Runtime, host: str | None, port: int | None, endpoint_url: str | None
) -> None:
    """Refuse, when an admin saves it, a server on an internal network (see adapters/outbound)."""
    try:
        if host:
            runtime.outbound.check(host, port or 587)
        if endpoint_url:
            parts = urlsplit(endpoint_url)
            default = 443 if parts.scheme == "https" else 80
            runtime.outbound.check(parts.hostname or "", parts.port or default, "endpoint_url")
    except OutboundRefused as exc:
        raise exc.as_validation_error() from exc
    except ValueError as exc:  # a port in endpoint_url that is not a number
        raise ValidationError(
            f"endpoint_url {endpoint_url!r} is not a valid URL", field="endpoint_url"
        ) from exc


# A stored secret belongs to the server it was typed for: moving any of these sends it
# elsewhere ("test connection" would hand a mailbox password to a host of the admin's
# choosing), so a move forgets the secret unless a new one comes with it.
ENDPOINT_FIELDS = ("host", "port", "security", "verify_tls", "endpoint_url")


def _endpoint_moved(account: t.MailAccount, changes: dict[str, Any]) -> list[str]:
    return [f for f in ENDPOINT_FIELDS if f in changes and changes[f] != getattr(account, f)]


def _forget_secrets(account: t.MailAccount) -> None:
    """Drop the password (or SES secret key) and OAuth tokens: they must be given again."""
    account.password_encrypted = None
    account.oauth_token = None  # delete-orphan: the token row goes with the same commit


def _pin(provider: OAuthProvider) -> dict[str, Any]:
    """Where a Gmail or Microsoft account sends: its provider's server, certificate checked."""
    return {
        "host": provider.smtp_host,
        "port": provider.smtp_port,
        "security": provider.smtp_security,
        "verify_tls": True,
    }


def _refuse_unpinned(provider: OAuthProvider, given: dict[str, Any]) -> None:
    """Refuse any of ``given`` that would move an OAuth account off its provider's server."""
    for name, value in _pin(provider).items():
        if name in given and given[name] != value:
            raise ValidationError(
                f"{provider.label} accounts send through {provider.smtp_host}:"
                f"{provider.smtp_port} with its certificate checked; {name} cannot be changed",
                field=name,
                value=given[name],
            )


def _check_pinned(runtime: Runtime, account: t.MailAccount, changes: dict[str, Any]) -> None:
    """Gmail and Microsoft accounts send only through their provider's SMTP server."""
    if account.kind in OAUTH_KINDS:
        _refuse_unpinned(installation_registry(runtime.settings.extra).get(account.kind), changes)


def list_accounts(
    runtime: Runtime, actor: Actor, needs_attention: bool | None = None
) -> list[t.MailAccount]:
    """The company's accounts; ``needs_attention``: only those paused or needing to log in."""
    with runtime.session() as session:
        query = select(t.MailAccount).where(t.MailAccount.company_id == actor.company_id)
        rows = list(session.scalars(query.order_by(t.MailAccount.id)))
    if needs_attention is None:
        return rows
    from docmail.services.oauth import needs_attention as attention  # oauth imports this module

    return [a for a in rows if attention(a) == needs_attention]


def get_account(runtime: Runtime, actor: Actor, account_id: int) -> t.MailAccount:
    with runtime.session() as session:
        return _get(session, actor, account_id)


def delete_account(runtime: Runtime, actor: Actor, account_id: int) -> None:
    actor.require(Role.ADMIN)
    with runtime.session() as session:
        account = _get(session, actor, account_id)
        used = session.scalar(select(t.Message.id).where(t.Message.account_id == account.id))
        if used is not None:
            raise Conflict(
                f"mail account {account_id} has messages in its log; pause it instead",
                field="account_id",
                value=account_id,
            )
        audit.record(session, actor, "account.deleted", f"account:{account.id} {account.name}")
        session.delete(account)


def _own_mailbox(session: Session, actor: Actor) -> t.MailAccount | None:
    """The user's own connected OAuth mailbox, if they have one."""
    if actor.user_id is None:
        return None
    return session.scalar(
        select(t.MailAccount)
        .join(t.OAuthToken, t.OAuthToken.account_id == t.MailAccount.id)
        .where(
            t.MailAccount.company_id == actor.company_id,
            t.MailAccount.owner_user_id == actor.user_id,
            t.OAuthToken.needs_reauth.is_(False),
        )
        .order_by(t.MailAccount.id)
        .limit(1)
    )


def may_use(actor: Actor, account: t.MailAccount, *, explicit: bool) -> bool:
    """Whether ``actor`` may send through ``account``.

    A personal mailbox (``owner_user_id`` set, e.g. a user's own Gmail) sends only
    for its owner, and for an admin who picks it explicitly; never by default for
    someone else.
    """
    if account.owner_user_id is None or account.owner_user_id == actor.user_id or actor.system:
        return True
    return explicit and actor.role is Role.ADMIN


def _check_may_use(actor: Actor, account: t.MailAccount, *, explicit: bool) -> t.MailAccount:
    if not may_use(actor, account, explicit=explicit):
        raise PermissionDenied(
            f"mail account {account.id} is another user's own mailbox; choose another account",
            field="account_id",
            value=account.id,
        )
    return account


def resolve_account(session: Session, actor: Actor, account_id: int | None) -> t.MailAccount:
    """The account to send from: the one asked for, else the user's own authenticated
    mailbox, else the company default — each only if the actor may use it."""
    if account_id is not None:
        return _check_may_use(actor, _get(session, actor, account_id), explicit=True)
    account = _own_mailbox(session, actor) or session.scalar(
        select(t.MailAccount).where(
            t.MailAccount.company_id == actor.company_id, t.MailAccount.is_default.is_(True)
        )
    )
    if account is None:
        raise Conflict(
            "no default mail account; create one with POST /api/v1/accounts", field="account_id"
        )
    return _check_may_use(actor, account, explicit=False)


def usable_accounts(runtime: Runtime, actor: Actor) -> list[t.MailAccount]:
    """The accounts a send dialog may offer this actor (personal mailboxes of others left out)."""
    return [a for a in list_accounts(runtime, actor) if may_use(actor, a, explicit=True)]


def smtp_settings(runtime: Runtime, account: t.MailAccount) -> SmtpSettings:
    password = (
        runtime.secrets.decrypt(account.password_encrypted) if account.password_encrypted else None
    )
    return SmtpSettings(
        host=account.host,
        port=account.port,
        security=account.security,
        username=account.username,
        password=password,
        timeout=runtime.settings.smtp_timeout,
        deadline=runtime.settings.smtp_deadline,
        verify_tls=account.verify_tls,
        ca_file=runtime.settings.extra.get("smtp_ca_file"),
        outbound=runtime.outbound,
    )


def smtp_transport_for(runtime: Runtime, account: t.MailAccount) -> Transport:
    return SmtpTransport(smtp_settings(runtime, account))


def ses_transport_for(runtime: Runtime, account: t.MailAccount) -> Transport:
    """Amazon SES v2 for a "ses" account: username = access key id, password = secret key."""
    encrypted = account.password_encrypted
    secret = runtime.secrets.decrypt(encrypted) if encrypted else ""
    return SesTransport(
        SesSettings(
            region=account.region or "",
            access_key_id=account.username or "",
            secret_access_key=secret,
            endpoint_url=account.endpoint_url,
            timeout=runtime.settings.smtp_timeout,
            from_email=account.from_email,
            outbound=runtime.outbound,
        )
    )


def check_account_connection(runtime: Runtime, actor: Actor, account_id: int) -> dict[str, object]:
    """Connect and log in; report the server's answer, or its refusal in plain words.

    A host on an internal network the installation does not allow is refused with a
    ``ValidationError`` (422) naming it, before any connection is made.
    """
    actor.require(Role.SENDER)
    account = get_account(runtime, actor, account_id)
    transport = runtime.transport_for(account)
    try:
        answer = transport.check()
    except OutboundRefused as exc:
        raise exc.as_validation_error() from exc
    except DeliveryError as exc:
        return {
            "ok": False,
            "error": exc.message,
            "smtp_code": exc.smtp_code,
            "server_reply": exc.server_reply,
            "transient": exc.transient,
        }
    finally:
        transport.close()
    return {"ok": True, "server_reply": answer}
