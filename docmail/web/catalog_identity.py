# ruff: noqa: E501 - translated sentences are kept whole on one line
"""Spanish and Portuguese for members, invitations and OAuth pages, as (English, Spanish,
Portuguese) rows.

Kept apart from :mod:`docmail.web.catalog` so each area's sentences stay together.
"""

from __future__ import annotations

ROWS: tuple[tuple[str, str, str], ...] = (
    (
        "Mailbox {mailbox} connected for {company}: token updated.",
        "Buzón {mailbox} conectado para {company}: token actualizado.",
        "Caixa {mailbox} conectada para {company}: token atualizado.",
    ),
    (
        "this authorization was started in another browser or by another person, so nothing was connected; sign in to docmail and click Authenticate on the mail account yourself",
        "esta autorización se inició en otro navegador o por otra persona, así que no se conectó nada; inicie sesión en docmail y pulse Autenticar en la cuenta de correo usted mismo",
        "esta autorização foi iniciada em outro navegador ou por outra pessoa, então nada foi conectado; entre no docmail e clique em Autenticar na conta de e-mail você mesmo",
    ),
    (
        "this authorization link is unknown, was already used or has expired; click Authenticate on the mail account again",
        "este enlace de autorización no se reconoce, ya se usó o venció; pulse Autenticar en la cuenta de correo de nuevo",
        "este link de autorização é desconhecido, já foi usado ou expirou; clique em Autenticar na conta de e-mail de novo",
    ),
    (
        "you are no longer a member of this company",
        "usted ya no es miembro de esta empresa",
        "você não é mais membro desta empresa",
    ),
    (
        "The server or its security changed, so the stored password was forgotten: type it again.",
        "Cambió el servidor o su seguridad, así que se olvidó la contraseña guardada: escríbala de nuevo.",
        "O servidor ou sua segurança mudou, então a senha guardada foi esquecida: digite-a de novo.",
    ),
)
