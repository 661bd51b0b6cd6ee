# ruff: noqa: E501 - translated sentences are kept whole on one line
"""Spanish and Portuguese for API tokens and audit pages, as (English, Spanish,
Portuguese) rows.

Kept apart from :mod:`docmail.web.catalog` so each area's sentences stay together.
"""

from __future__ import annotations

ROWS: tuple[tuple[str, str, str], ...] = (
    ("API tokens", "Tokens de la API", "Tokens da API"),
    ("Action", "Acción", "Ação"),
    ("Actions", "Acciones", "Ações"),
    ("Active", "Activo", "Ativo"),
    ("Audit list", "Registro de cambios", "Registro de alterações"),
    (
        "Copy it now and keep it secret: it is shown only this once.",
        "Cópielo ahora y guárdelo en secreto: solo se muestra esta vez.",
        "Copie agora e guarde em segredo: ele só é mostrado desta vez.",
    ),
    ("Create a token", "Crear un token", "Criar um token"),
    ("Create token", "Crear token", "Criar token"),
    ("Created", "Creado", "Criado"),
    ("Created by", "Creado por", "Criado por"),
    ("Expired", "Vencido", "Expirado"),
    ("Expires", "Vence", "Expira"),
    ("Expires (UTC, optional)", "Vence (UTC, opcional)", "Expira (UTC, opcional)"),
    (
        "For example the program that will use it.",
        "Por ejemplo, el programa que lo usará.",
        "Por exemplo, o programa que vai usá-lo.",
    ),
    ("Last used", "Último uso", "Último uso"),
    (
        "Leave it empty for a token that does not expire.",
        "Déjelo vacío para un token que no vence.",
        "Deixe vazio para um token que não expira.",
    ),
    ("Never", "Nunca", "Nunca"),
    ("No API tokens yet.", "Todavía no hay tokens de la API.", "Ainda não há tokens da API."),
    ("Nothing recorded yet.", "Todavía no hay nada registrado.", "Ainda não há nada registrado."),
    ("Object", "Objeto", "Objeto"),
    (
        "Programs such as your ERP use a token to call the API. Each token acts for this company with one role.",
        "Los programas como su ERP usan un token para llamar a la API. Cada token actúa por esta empresa con un rol.",
        "Programas como o seu ERP usam um token para chamar a API. Cada token age por esta empresa com um papel.",
    ),
    ("Queued by", "Puesto en cola por", "Colocado na fila por"),
    ("Revoke", "Revocar", "Revogar"),
    ("Revoke {name}", "Revocar {name}", "Revogar {name}"),
    ("Revoked {when}", "Revocado {when}", "Revogado {when}"),
    ("Starts with", "Empieza con", "Começa com"),
    ("The new token", "El token nuevo", "O token novo"),
    ("Token created: {name}", "Token creado: {name}", "Token criado: {name}"),
    (
        "Token revoked. Requests with it are refused from now on.",
        "Token revocado. Desde ahora se rechazan las solicitudes con él.",
        "Token revogado. A partir de agora as solicitações com ele são recusadas.",
    ),
    ("When", "Cuándo", "Quando"),
    ("Who", "Quién", "Quem"),
    (
        "Who changed what in this company, newest first. Times are in UTC.",
        "Quién cambió qué en esta empresa, lo más reciente primero. Las horas están en UTC.",
        "Quem alterou o quê nesta empresa, o mais recente primeiro. Os horários estão em UTC.",
    ),
)
