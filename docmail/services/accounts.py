"""Mail accounts: SMTP settings per company, password encrypted at rest and write-only."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from docmail.adapters.db import tables as t
from docmail.adapters.smtp.transport import SmtpSettings, SmtpTransport, Transport
from docmail.errors import Conflict, DeliveryError, NotFound, ValidationError
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


def create_account(runtime: Runtime, actor: Actor, data: AccountIn) -> t.MailAccount:
    actor.require(Role.ADMIN)
    if data.username and not data.password:
        raise ValidationError("password is required when username is given", field="password")
    with runtime.session() as session:
        _check_name_free(session, actor.company_id, data.name, None)
        values = data.model_dump(exclude={"password", "retry_policy"})
        account = t.MailAccount(company_id=actor.company_id, **values)
        account.retry_policy = data.retry_policy.model_dump() if data.retry_policy else {}
        if data.password:
            account.password_encrypted = runtime.secrets.encrypt(data.password)
        session.add(account)
        session.flush()
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
    with runtime.session() as session:
        account = _get(session, actor, account_id)
        changes = patch.model_dump(
            exclude_unset=True, exclude={"password", "is_default", "retry_policy"}
        )
        if "retry_policy" in patch.model_fields_set:
            account.retry_policy = patch.retry_policy.model_dump() if patch.retry_policy else {}
        if "name" in changes:
            _check_name_free(session, actor.company_id, changes["name"], account.id)
        for key, value in changes.items():
            setattr(account, key, value)
        if "password" in patch.model_fields_set:
            account.password_encrypted = (
                runtime.secrets.encrypt(patch.password) if patch.password else None
            )
        if patch.is_default:
            _make_only_default(session, account)
        if patch.paused is False:
            account.pause_reason = None
    return account


def list_accounts(runtime: Runtime, actor: Actor) -> list[t.MailAccount]:
    with runtime.session() as session:
        query = select(t.MailAccount).where(t.MailAccount.company_id == actor.company_id)
        return list(session.scalars(query.order_by(t.MailAccount.id)))


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
        session.delete(account)


def resolve_account(session: Session, actor: Actor, account_id: int | None) -> t.MailAccount:
    """The account to send from: the one asked for, else the company default."""
    if account_id is not None:
        return _get(session, actor, account_id)
    account = session.scalar(
        select(t.MailAccount).where(
            t.MailAccount.company_id == actor.company_id, t.MailAccount.is_default.is_(True)
        )
    )
    if account is None:
        raise Conflict(
            "no default mail account; create one with POST /api/v1/accounts", field="account_id"
        )
    return account


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
        verify_tls=account.verify_tls,
        ca_file=runtime.settings.extra.get("smtp_ca_file"),
    )


def smtp_transport_for(runtime: Runtime, account: t.MailAccount) -> Transport:
    return SmtpTransport(smtp_settings(runtime, account))


def check_account_connection(runtime: Runtime, actor: Actor, account_id: int) -> dict[str, object]:
    """Connect and log in; report the server's answer, or its refusal in plain words."""
    actor.require(Role.SENDER)
    account = get_account(runtime, actor, account_id)
    transport = runtime.transport_for(account)
    try:
        answer = transport.check()
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
