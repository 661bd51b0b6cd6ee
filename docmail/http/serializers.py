"""Turning rows into JSON: secrets are never included, only whether they are set."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from docmail.adapters.db import tables as t
from docmail.domain.outbox import policy_from_config
from docmail.services.compose import AttachmentRef, Composition
from docmail.services.oauth import needs_attention, oauth_status
from docmail.services.partial_delivery import recipient_report
from docmail.services.templates import EffectiveTemplate


def account_json(a: t.MailAccount) -> dict[str, Any]:
    return {
        "id": a.id,
        "name": a.name,
        "kind": a.kind,
        "host": a.host,
        "port": a.port,
        "security": a.security,
        "username": a.username,
        "password_set": a.password_encrypted is not None,
        "from_email": a.from_email,
        "from_name": a.from_name,
        "verify_tls": a.verify_tls,
        "is_default": a.is_default,
        "paused": a.paused,
        "pause_reason": a.pause_reason,
        "rate_per_minute": a.rate_per_minute,
        "rate_per_hour": a.rate_per_hour,
        "rate_per_day": a.rate_per_day,
        "max_concurrency": a.max_concurrency,
        "retry_policy": policy_json(a.retry_policy),
        "owner_user_id": a.owner_user_id,
        "region": a.region,
        "endpoint_url": a.endpoint_url,
        "oauth": oauth_status(a),  # connected / needs_authentication / not_connected
        "needs_attention": needs_attention(a),
    }


def policy_json(config: dict[str, Any]) -> dict[str, Any]:
    policy = policy_from_config(config)
    return {
        "kind": config.get("kind", "exponential"),
        "max_attempts": policy.max_attempts,
        "base_seconds": policy.base_delay.total_seconds(),
        "max_delay_seconds": policy.max_delay.total_seconds(),
        "max_age_hours": policy.max_age.total_seconds() / 3600,
        "jitter": policy.jitter,
    }


def contact_json(c: t.Contact) -> dict[str, Any]:
    return {
        "id": c.id,
        "name": c.name,
        "email": c.email,
        "roles": list(c.roles),
        "bouncing": c.bouncing,
        "bounce_reason": c.bounce_reason,
    }


def party_json(p: t.Party) -> dict[str, Any]:
    return {
        "id": p.id,
        "code": p.code,
        "name": p.name,
        "tax_id": p.tax_id,
        "email": p.email,
        "language": p.language,
        "auto_send": p.auto_send,
        "auto_send_only_multiple": p.auto_send_only_multiple,
        "contacts": [contact_json(c) for c in p.contacts],
    }


def doctype_json(d: t.DocumentType) -> dict[str, Any]:
    return {
        "code": d.code,
        "name": d.name,
        "recipient_roles": list(d.recipient_roles),
        "cc_roles": list(d.cc_roles),
        "fallback": d.fallback,
        "required_status": d.required_status,
    }


def template_json(tpl: EffectiveTemplate) -> dict[str, Any]:
    return {
        "doc_type": tpl.doc_type,
        "language": tpl.language,
        "custom": tpl.custom,
        "subject": tpl.source.subject,
        "body_html": tpl.source.body_html,
        "body_text": tpl.source.body_text,
    }


def attachment_json(
    a: t.DocumentAttachment | t.MessageAttachment | AttachmentRef,
) -> dict[str, Any]:
    return {
        "id": a.id,
        "filename": a.filename,
        "content_type": a.content_type,
        "size": a.size,
        "sha256": a.blob_sha256,
    }


def money_text(value: Decimal | None) -> str | None:
    """Plain decimal notation with at least two decimals ("1160.00", never "1.16E+3")."""
    if value is None:
        return None
    exponent = value.normalize().as_tuple().exponent
    places = max(2, -exponent if isinstance(exponent, int) else 2)
    return f"{value:.{places}f}"


def document_json(d: t.Document) -> dict[str, Any]:
    return {
        "id": d.id,
        "type": d.doc_type,
        "number": d.number,
        "party_id": d.party_id,
        "party_code": d.party.code,
        "issue_date": d.issue_date.isoformat() if d.issue_date else None,
        "due_date": d.due_date.isoformat() if d.due_date else None,
        "total": money_text(d.total),
        "currency": d.currency,
        "status": d.status,
        "fiscal_id": d.fiscal_id,
        "data": d.data,
        "attachments": [attachment_json(a) for a in d.attachments],
        "created_at": d.created_at.isoformat(),
    }


def message_json(m: t.Message, attempts: list[t.MessageAttempt] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": m.id,
        "state": m.state,
        "account_id": m.account_id,
        "batch_id": m.batch_id,
        "resend_of_id": m.resend_of_id,
        "idempotency_key": m.idempotency_key,
        "message_id": m.message_id_header,
        "from": {"email": m.from_email, "name": m.from_name},
        "to": list(m.to),
        "cc": list(m.cc),
        "bcc": list(m.bcc),
        "subject": m.subject,
        "attempts": m.attempts,
        "next_attempt_at": m.next_attempt_at.isoformat() if m.state == "retrying" else None,
        "last_error": m.last_error,
        "smtp_code": m.smtp_code,
        "server_reply": m.server_reply,
        "document_ids": [link.document_id for link in m.document_links],
        "attachments": [attachment_json(a) for a in m.attachments],
        "created_at": m.created_at.isoformat(),
        "created_by": m.created_by,  # user:<email>, token:<name>, automation:<kind>, ...
        "sent_at": m.sent_at.isoformat() if m.sent_at else None,
    }
    if attempts is not None:
        body["attempt_log"] = [
            {
                "number": a.number,
                "worker": a.worker,
                "started_at": a.started_at.isoformat(),
                "finished_at": a.finished_at.isoformat() if a.finished_at else None,
                "outcome": a.outcome,
                "smtp_code": a.smtp_code,
                "detail": a.detail,
            }
            for a in attempts
        ]
        # Who got it: accepted, deferred (retried later, alone), refused or failed, with
        # the server's reply to that recipient (see domain/recipient_states.py).
        body["recipients"] = [
            {
                "field": r.field,
                "address": r.address,
                "state": r.state,
                "code": r.code,
                "reply": r.reply,
            }
            for r in recipient_report(m, attempts)
        ]
        body["body_html"], body["body_text"] = m.body_html, m.body_text
    return body


def composition_json(c: Composition) -> dict[str, Any]:
    return {
        "document_ids": c.document_ids,
        "to": [m.formatted() for m in c.to],
        "cc": [m.formatted() for m in c.cc],
        "bcc": [],
        "subject": c.subject,
        "body_html": c.body_html,
        "body_text": c.body_text,
        "attachments": [attachment_json(a) for a in c.attachments],
        "language": c.language,
        "locale": c.locale,
        "account": account_json(c.account) if c.account else None,
        "warnings": c.warnings,
        "manual_address_required": c.manual_address_required,
        "can_send": c.blocked_reason is None,
        "blocked_reason": c.blocked_reason,
    }
