# ruff: noqa: E501 - translated sentences are kept whole on one line
"""Spanish and Portuguese for members, invitations and OAuth pages, as (English, Spanish,
Portuguese) rows.

Kept apart from :mod:`docmail.web.catalog` so each area's sentences stay together.
"""

from __future__ import annotations

ROWS: tuple[tuple[str, str, str], ...] = (
    (
        "Change password",
        "Cambiar contraseña",
        "Alterar senha",
    ),
    (
        "Role changed. It applies from the member's next click.",
        "Rol cambiado. Se aplica desde el próximo clic del miembro.",
        "Papel alterado. Vale a partir do próximo clique do membro.",
    ),
    (
        "The member was signed out of this company everywhere.",
        "Se cerraron todas las sesiones del miembro en esta empresa.",
        "Todas as sessões do membro nesta empresa foram encerradas.",
    ),
    (
        "The member was removed and signed out.",
        "El miembro fue quitado y se cerraron sus sesiones.",
        "O membro foi removido e suas sessões encerradas.",
    ),
    (
        "Invitation withdrawn: its link no longer works.",
        "Invitación retirada: su enlace ya no funciona.",
        "Convite retirado: o link não funciona mais.",
    ),
    (
        "Invitation for {email} ready",
        "Invitación para {email} lista",
        "Convite para {email} pronto",
    ),
    (
        "It was emailed from this company's mail account.",
        "Se envió por correo desde la cuenta de esta empresa.",
        "Foi enviado por e-mail pela conta desta empresa.",
    ),
    (
        "It could not be emailed: {reason}",
        "No se pudo enviar por correo: {reason}",
        "Não foi possível enviar por e-mail: {reason}",
    ),
    (
        "Or give this link to the person yourself (shown only now; it works once, until {date}):",
        "O entregue usted mismo este enlace a la persona (se muestra solo ahora; funciona una vez, hasta el {date}):",
        "Ou entregue você mesmo este link à pessoa (mostrado só agora; funciona uma vez, até {date}):",
    ),
    (
        "Open sessions",
        "Sesiones abiertas",
        "Sessões abertas",
    ),
    (
        "Actions",
        "Acciones",
        "Ações",
    ),
    (
        "Change",
        "Cambiar",
        "Alterar",
    ),
    (
        "Sign out everywhere",
        "Cerrar todas sus sesiones",
        "Encerrar todas as sessões",
    ),
    (
        "Pending invitations",
        "Invitaciones pendientes",
        "Convites pendentes",
    ),
    (
        "Invited by",
        "Invitado por",
        "Convidado por",
    ),
    (
        "Expires",
        "Vence",
        "Vence",
    ),
    (
        "Withdraw",
        "Retirar",
        "Retirar",
    ),
    (
        "Invite someone to this company",
        "Invitar a alguien a esta empresa",
        "Convidar alguém para esta empresa",
    ),
    (
        "docmail emails them a link; they choose their own password, or sign in if they already use docmail.",
        "docmail le envía un enlace por correo; la persona elige su propia contraseña, o inicia sesión si ya usa docmail.",
        "o docmail envia um link por e-mail; a pessoa escolhe a própria senha, ou entra se já usa o docmail.",
    ),
    (
        "Send invitation",
        "Enviar invitación",
        "Enviar convite",
    ),
    (
        "Remove member",
        "Quitar miembro",
        "Remover membro",
    ),
    (
        "Remove {email} from {company}? They are signed out at once and can come back only with a new invitation.",
        "¿Quitar a {email} de {company}? Sus sesiones se cierran de inmediato y solo puede volver con una nueva invitación.",
        "Remover {email} de {company}? As sessões são encerradas na hora e só pode voltar com um novo convite.",
    ),
    (
        "Invitation",
        "Invitación",
        "Convite",
    ),
    (
        "{inviter} invites {email} to {company} as {role}.",
        "{inviter} invita a {email} a {company} como {role}.",
        "{inviter} convida {email} para {company} como {role}.",
    ),
    (
        "The invitation expires on {date}.",
        "La invitación vence el {date}.",
        "O convite vence em {date}.",
    ),
    (
        "Accept and join {company}",
        "Aceptar y unirse a {company}",
        "Aceitar e entrar em {company}",
    ),
    (
        "You are signed in as {me}, but this invitation is for {email}. Sign out, then open the link again.",
        "Inició sesión como {me}, pero esta invitación es para {email}. Cierre sesión y abra el enlace de nuevo.",
        "Você entrou como {me}, mas este convite é para {email}. Saia e abra o link de novo.",
    ),
    (
        "New to docmail? Choose your password",
        "¿Nuevo en docmail? Elija su contraseña",
        "Novo no docmail? Escolha sua senha",
    ),
    (
        "Your name",
        "Su nombre",
        "Seu nome",
    ),
    (
        "At least {n} characters.",
        "Al menos {n} caracteres.",
        "Pelo menos {n} caracteres.",
    ),
    (
        "Password again",
        "Contraseña otra vez",
        "Senha de novo",
    ),
    (
        "Already use docmail with this address? Sign in, then open the invitation link again.",
        "¿Ya usa docmail con esta dirección? Inicie sesión y abra de nuevo el enlace de la invitación.",
        "Já usa o docmail com este endereço? Entre e abra de novo o link do convite.",
    ),
    (
        "Password changed. Your other sessions were signed out.",
        "Contraseña cambiada. Se cerraron sus otras sesiones.",
        "Senha alterada. Suas outras sessões foram encerradas.",
    ),
    (
        "Current password",
        "Contraseña actual",
        "Senha atual",
    ),
    (
        "New password",
        "Contraseña nueva",
        "Nova senha",
    ),
    (
        "New password again",
        "Contraseña nueva otra vez",
        "Nova senha de novo",
    ),
    (
        "The two passwords differ.",
        "Las dos contraseñas no coinciden.",
        "As duas senhas são diferentes.",
    ),
    (
        "the current password is not right",
        "la contraseña actual no es correcta",
        "a senha atual não está certa",
    ),
    (
        "the password needs at least 10 characters",
        "la contraseña necesita al menos 10 caracteres",
        "a senha precisa de pelo menos 10 caracteres",
    ),
    (
        "this invitation is unknown, was already used, was withdrawn or has expired",
        "esta invitación no se reconoce, ya se usó, fue retirada o venció",
        "este convite é desconhecido, já foi usado, foi retirado ou venceu",
    ),
    (
        "the company needs at least one admin; make someone else admin first",
        "la empresa necesita al menos un administrador; haga administrador a otra persona primero",
        "a empresa precisa de pelo menos um administrador; torne outra pessoa administrador antes",
    ),
    (
        "no default mail account; create one with POST /api/v1/accounts",
        "no hay cuenta de correo predeterminada; cree una en Configuración > Cuentas de correo",
        "não há conta de e-mail padrão; crie uma em Configurações > Contas de e-mail",
    ),
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
