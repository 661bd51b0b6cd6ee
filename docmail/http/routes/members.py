"""Members and invitations of the token's company (admins)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from docmail.http.auth import current_actor, runtime_of
from docmail.http.params import IdPath
from docmail.services import members, oauth
from docmail.services.inputs import Strict
from docmail.services.runtime import Actor

router = APIRouter(tags=["members"])
RoleName = Literal["admin", "sender", "viewer"]


class MemberOut(BaseModel):
    user_id: int
    email: str
    name: str
    role: RoleName
    sessions: int = Field(description="browser sessions open in this company")


class MemberList(BaseModel):
    items: list[MemberOut]


class InvitationIn(Strict):
    email: str = Field(max_length=320, examples=["ana@acme.mx"])
    role: RoleName = "sender"
    name: str = Field(default="", max_length=200)


class InvitationOut(BaseModel):
    id: int
    email: str
    role: RoleName
    invited_by: str
    created_at: datetime
    expires_at: datetime


class InvitationMade(BaseModel):
    id: int
    email: str
    role: RoleName
    expires_at: datetime
    link: str = Field(description="the acceptance link; shown only in this answer")
    emailed: bool = Field(description="queued to the address through the company's account")
    not_emailed_reason: str | None = None


class InvitationList(BaseModel):
    items: list[InvitationOut]


class RoleIn(Strict):
    role: RoleName


class Ended(BaseModel):
    ended: int = Field(description="how many browser sessions were signed out")


@router.get("/members", response_model=MemberList)
def list_members(request: Request, actor: Actor = Depends(current_actor)) -> MemberList:
    rows = members.members(runtime_of(request), actor)
    return MemberList(items=[MemberOut(**vars(m)) for m in rows])


@router.patch("/members/{user_id}", response_model=MemberOut)
def change_role(
    user_id: IdPath, body: RoleIn, request: Request, actor: Actor = Depends(current_actor)
) -> MemberOut:
    """Change a member's role; the company always keeps at least one admin."""
    runtime = runtime_of(request)
    members.change_role(runtime, actor, user_id, body.role)
    return next(
        MemberOut(**vars(m)) for m in members.members(runtime, actor) if m.user_id == user_id
    )


@router.delete("/members/{user_id}", status_code=204)
def remove_member(user_id: IdPath, request: Request, actor: Actor = Depends(current_actor)) -> None:
    """Take the person out of the company; their sessions in it end at once."""
    members.remove_member(runtime_of(request), actor, user_id)


@router.delete("/members/{user_id}/sessions", response_model=Ended)
def end_sessions(user_id: IdPath, request: Request, actor: Actor = Depends(current_actor)) -> Ended:
    return Ended(ended=members.end_sessions(runtime_of(request), actor, user_id))


@router.get("/invitations", response_model=InvitationList)
def list_invitations(request: Request, actor: Actor = Depends(current_actor)) -> InvitationList:
    rows = members.pending_invitations(runtime_of(request), actor)
    return InvitationList(
        items=[
            InvitationOut(
                id=r.id,
                email=r.email,
                role=r.role,  # type: ignore[arg-type]
                invited_by=r.invited_by,
                created_at=r.created_at,
                expires_at=r.expires_at,
            )
            for r in rows
        ]
    )


@router.post("/invitations", status_code=201, response_model=InvitationMade)
def invite(
    body: InvitationIn, request: Request, actor: Actor = Depends(current_actor)
) -> InvitationMade:
    """Invite an address; the answer is the same whether or not it uses docmail elsewhere."""
    runtime = runtime_of(request)
    made = members.invite(
        runtime,
        actor,
        body.email,
        body.role,
        name=body.name,
        base_url=oauth.public_base(runtime, str(request.base_url)),
    )
    return InvitationMade(
        id=made.invitation_id,
        email=made.email,
        role=made.role,  # type: ignore[arg-type]
        expires_at=made.expires_at,
        link=made.link,
        emailed=made.emailed,
        not_emailed_reason=made.not_emailed_reason,
    )


@router.delete("/invitations/{invitation_id}", status_code=204)
def revoke_invitation(
    invitation_id: IdPath, request: Request, actor: Actor = Depends(current_actor)
) -> None:
    members.revoke_invitation(runtime_of(request), actor, invitation_id)
