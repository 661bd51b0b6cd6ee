"""The invitation email, in the company's language (es, pt, en).

Plain content, like the default document templates: the person reads it in their
mailbox, before they have a docmail language preference.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

ROLE_NAMES = {
    "es": {"admin": "administrador", "sender": "remitente", "viewer": "lector"},
    "pt": {"admin": "administrador", "sender": "remetente", "viewer": "leitor"},
    "en": {"admin": "admin", "sender": "sender", "viewer": "viewer"},
}
_TEXTS = {
    "es": (
        "Invitación a {company} en docmail",
        "{inviter} le invita a {company} en docmail como {role}.",
        "Acepte la invitación aquí (vence el {expires}):",
        "Si no esperaba esta invitación, ignore este correo: no se creó nada.",
    ),
    "pt": (
        "Convite para {company} no docmail",
        "{inviter} convida você para {company} no docmail como {role}.",
        "Aceite o convite aqui (vence em {expires}):",
        "Se você não esperava este convite, ignore este e-mail: nada foi criado.",
    ),
    "en": (
        "Invitation to {company} on docmail",
        "{inviter} invites you to {company} on docmail as {role}.",
        "Accept the invitation here (it expires on {expires}):",
        "If you did not expect this invitation, ignore this email: nothing was created.",
    ),
}


@dataclass(frozen=True)
class InvitationMail:
    subject: str
    body_text: str
    body_html: str


def invitation_mail(
    language: str, *, company: str, inviter: str, role: str, link: str, expires: str
) -> InvitationMail:
    """The subject and bodies of an invitation (unknown languages get Spanish)."""
    lang = language if language in _TEXTS else "es"
    subject, invites, accept, ignore = _TEXTS[lang]
    values = {
        "company": company,
        "inviter": inviter,
        "role": ROLE_NAMES[lang].get(role, role),
        "expires": expires,
    }
    lines = [invites.format(**values), accept.format(**values), link, ignore]
    html_values = {key: escape(value) for key, value in values.items()}
    html = (
        f"<p>{escape(invites).format(**html_values)}</p>"
        f"<p>{escape(accept).format(**html_values)}<br>"
        f'<a href="{escape(link)}">{escape(link)}</a></p>'
        f"<p>{escape(ignore)}</p>"
    )
    return InvitationMail(subject.format(**values), "\n\n".join(lines) + "\n", html)
