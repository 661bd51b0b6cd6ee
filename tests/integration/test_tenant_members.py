"""Members join by invitation: no admin sets, learns or reuses another person's password.

The attacks (issue: user takeover across companies): company B's admin
pre-registers an address of company A with a password B knows, waits for A to
add that address as admin, then signs in to A; or adds any user of A to B
without consent; or tells from the answers which addresses use docmail. Each is
replayed here through the real app (API and pages, two companies).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from docmail.adapters.db import tables as t
from docmail.services.companies import add_membership, create_user
from docmail.services.runtime import Role, Runtime
from tests.support.app import Tenant, make_runtime, make_tenant
from tests.support.web import csrf_of, sign_in

API = "/api/v1"
PASSWORD = "alpha-admin-pass"
_LINK = re.compile(r'id="invite-link"[^>]*value="([^"]+)"')


class Two:
    """Company A (the victim) and company B (the attacker), each with an admin browser."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.a: Tenant = make_tenant(runtime, "Alpha SA de CV")
        self.b: Tenant = make_tenant(runtime, "Beta SA de CV")
        for tag, tenant in (("alpha", self.a), ("beta", self.b)):
            user = create_user(runtime, f"admin@{tag}.example.com", PASSWORD, name=tag)
            add_membership(runtime, user.id, tenant.company_id, Role.ADMIN)
        self.a_web = sign_in(runtime, "admin@alpha.example.com", PASSWORD)
        self.b_web = sign_in(runtime, "admin@beta.example.com", PASSWORD)

    def invite_on_page(self, web: TestClient, email: str, role: str, **extra: str) -> str:
        """Invite through the users page; the link the page shows once."""
        form = {"csrf_token": csrf_of(web), "email": email, "role": role, **extra}
        page = web.post("/settings/users", data=form)
        assert page.status_code == 201, page.text
        found = _LINK.search(page.text)
        assert found is not None
        return found.group(1).replace("http://testserver", "")

    def accept_new(self, link: str, password: str, name: str = "Nueva") -> TestClient:
        browser = TestClient(self.a_web.app)
        page = browser.get(link)
        assert page.status_code == 200, page.text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        form = {
            "csrf_token": token.group(1),
            "name": name,
            "password": password,
            "password_again": password,
        }
        answer = browser.post(link, data=form, follow_redirects=False)
        assert answer.status_code == 303, answer.text
        return browser

    def companies_of(self, email: str) -> set[int]:
        with self.runtime.session() as session:
            rows = session.scalars(
                select(t.Membership.company_id)
                .join(t.User, t.User.id == t.Membership.user_id)
                .where(t.User.email == email)
            )
            return set(rows)

    def user_exists(self, email: str) -> bool:
        with self.runtime.session() as session:
            return session.scalar(select(t.User.id).where(t.User.email == email)) is not None


@pytest.fixture
def two(database_url: str, tmp_path: Path) -> Iterator[Two]:
    yield Two(make_runtime(database_url, tmp_path / "data"))


def test_adding_someone_sets_no_password_and_creates_no_user(two: Two) -> None:
    two.invite_on_page(two.b_web, "cfo@alpha.example.com", "admin", password="b-knows-this-1")

    assert not two.user_exists("cfo@alpha.example.com")
    browser = TestClient(two.b_web.app)
    token = re.search(r'name="csrf_token" value="([^"]+)"', browser.get("/login").text)
    assert token is not None
    tried = browser.post(
        "/login",
        data={
            "email": "cfo@alpha.example.com",
            "password": "b-knows-this-1",
            "csrf_token": token.group(1),
        },
        follow_redirects=False,
    )
    assert tried.status_code == 401


def test_a_pre_registered_address_gives_the_attacker_no_way_into_the_other_company(
    two: Two,
) -> None:
    # The most B can do: invite the victim's address to B and accept the copied link itself.
    squatted = two.accept_new(
        two.invite_on_page(two.b_web, "cfo@alpha.example.com", "viewer"), "b-knows-this-1"
    )
    # Later A invites the same address as admin; the link goes to the real person.
    made = two.a.client.post(
        f"{API}/invitations", json={"email": "cfo@alpha.example.com", "role": "admin"}
    )
    assert made.status_code == 201, made.text

    assert two.companies_of("cfo@alpha.example.com") == {two.b.company_id}
    switched = squatted.post(
        "/company", data={"csrf_token": csrf_of(squatted), "company_id": two.a.company_id}
    )
    assert switched.status_code == 403
    assert squatted.get("/settings/users").status_code == 403  # a viewer of B, nothing of A
    stolen = squatted.post(
        made.json()["link"].replace("http://testserver", ""), data={"csrf_token": csrf_of(squatted)}
    )
    assert stolen.status_code == 404 or two.a.company_id not in two.companies_of(
        "admin@beta.example.com"
    )


def test_another_companys_user_joins_only_by_accepting(two: Two) -> None:
    ana = create_user(two.runtime, "ana@alpha.example.com", PASSWORD, name="Ana")
    add_membership(two.runtime, ana.id, two.a.company_id, Role.SENDER)

    link = two.invite_on_page(two.b_web, "ana@alpha.example.com", "admin")

    assert two.companies_of("ana@alpha.example.com") == {two.a.company_id}
    ana_web = sign_in(two.runtime, "ana@alpha.example.com", PASSWORD)
    page = ana_web.get(link)
    assert "Beta SA de CV" in page.text
    accepted = ana_web.post(link, data={"csrf_token": csrf_of(ana_web)}, follow_redirects=False)
    assert accepted.status_code == 303
    assert two.companies_of("ana@alpha.example.com") == {two.a.company_id, two.b.company_id}


def test_the_answer_to_an_invitation_does_not_tell_who_uses_docmail(two: Two) -> None:
    create_user(two.runtime, "known@alpha.example.com", PASSWORD)

    known = two.b.client.post(f"{API}/invitations", json={"email": "known@alpha.example.com"})
    unknown = two.b.client.post(f"{API}/invitations", json={"email": "nobody@alpha.example.com"})

    assert known.status_code == unknown.status_code == 201
    shape = {
        k: v for k, v in known.json().items() if k not in ("id", "email", "link", "expires_at")
    }
    assert shape == {
        k: v for k, v in unknown.json().items() if k not in ("id", "email", "link", "expires_at")
    }
    pages = [
        two.b_web.post(
            "/settings/users",
            data={"csrf_token": csrf_of(two.b_web), "email": email, "role": "sender"},
        )
        for email in ("known@alpha.example.com", "nobody@alpha.example.com")
    ]
    assert [p.status_code for p in pages] == [201, 201]
    answers = [_answer(p.text) for p in pages]
    assert answers[0].replace("known@", "X@") == answers[1].replace("nobody@", "X@")


def _answer(page: str) -> str:
    """The part of the users page that answers the invitation, without link and date."""
    found = re.search(r'<section class="card invited".*?</section>', page, re.S)
    assert found is not None
    return re.sub(r'value="[^"]+"|\d{4}-\d\d-\d\d[ T]\d\d:\d\d', "", found.group(0))


def test_a_removed_member_is_signed_out_at_once(two: Two) -> None:
    bob = create_user(two.runtime, "bob@alpha.example.com", PASSWORD)
    add_membership(two.runtime, bob.id, two.a.company_id, Role.SENDER)
    bob_web = sign_in(two.runtime, "bob@alpha.example.com", PASSWORD)
    assert bob_web.get("/documents", follow_redirects=False).status_code == 200

    asked = two.a_web.post(
        f"/settings/users/{bob.id}/remove", data={"csrf_token": csrf_of(two.a_web)}
    )
    assert "bob@alpha.example.com" in asked.text and bob_web.get("/documents").status_code == 200
    done = two.a_web.post(
        f"/settings/users/{bob.id}/remove",
        data={"csrf_token": csrf_of(two.a_web), "confirm": "1"},
        follow_redirects=False,
    )

    assert done.status_code == 303
    assert bob_web.get("/documents", follow_redirects=False).headers["location"] == "/login"
    assert two.companies_of("bob@alpha.example.com") == set()


def test_roles_change_and_sessions_end_through_the_api(two: Two) -> None:
    bob = create_user(two.runtime, "bob@alpha.example.com", PASSWORD)
    add_membership(two.runtime, bob.id, two.a.company_id, Role.ADMIN)
    bob_web = sign_in(two.runtime, "bob@alpha.example.com", PASSWORD)

    demoted = two.a.client.patch(f"{API}/members/{bob.id}", json={"role": "viewer"})
    assert demoted.status_code == 200 and demoted.json()["role"] == "viewer"
    assert bob_web.get("/settings/users").status_code == 403
    ended = two.a.client.delete(f"{API}/members/{bob.id}/sessions")

    assert ended.json() == {"ended": 1}
    audit = two.a.client.get(f"{API}/audit", params={"action": "member."}).json()["items"]
    assert [(e["action"], e["actor"], e["target"]) for e in audit] == [
        ("member.signed_out", "token:tests", "user:bob@alpha.example.com"),
        ("member.role_changed", "token:tests", "user:bob@alpha.example.com"),
    ]
    assert bob_web.get("/documents", follow_redirects=False).status_code == 303
    assert two.b.client.patch(f"{API}/members/{bob.id}", json={"role": "admin"}).status_code == 404
    assert two.b.client.delete(f"{API}/members/{bob.id}").status_code == 404


def test_the_last_admin_stays(two: Two) -> None:
    with two.runtime.session() as session:
        admin_id = session.scalar(
            select(t.User.id).where(t.User.email == "admin@alpha.example.com")
        )

    demote = two.a.client.patch(f"{API}/members/{admin_id}", json={"role": "sender"})
    remove = two.a.client.delete(f"{API}/members/{admin_id}")

    assert demote.status_code == remove.status_code == 409
    assert demote.json()["field"] == "role"


def test_a_new_person_accepts_once_chooses_their_password_and_lands_in_the_company(
    two: Two,
) -> None:
    link = two.invite_on_page(two.a_web, "new@alpha.example.com", "sender", name="Nuevo")

    browser = two.accept_new(link, "my-own-password-1")

    assert browser.get("/documents").status_code == 200
    assert two.companies_of("new@alpha.example.com") == {two.a.company_id}
    assert sign_in(two.runtime, "new@alpha.example.com", "my-own-password-1")
    again = TestClient(two.a_web.app).get(link)
    assert again.status_code == 404


def test_a_withdrawn_invitation_and_a_too_short_password_are_refused(two: Two) -> None:
    link = two.invite_on_page(two.a_web, "new@alpha.example.com", "sender")
    browser = TestClient(two.a_web.app)
    page = browser.get(link)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token is not None
    short = browser.post(
        link, data={"csrf_token": token.group(1), "password": "short", "password_again": "short"}
    )
    assert short.status_code == 422 and "10" in short.text
    (pending,) = two.a.client.get(f"{API}/invitations").json()["items"]

    assert two.a.client.delete(f"{API}/invitations/{pending['id']}").status_code == 204
    assert browser.get(link).status_code == 404
    assert two.b.client.delete(f"{API}/invitations/{pending['id']}").status_code == 404


def test_the_invitation_is_emailed_in_the_companys_language_in_the_same_transaction(
    two: Two,
) -> None:
    account = two.a.client.post(
        f"{API}/accounts",
        json={
            "name": "Avisos",
            "host": "127.0.0.1",
            "port": 2525,
            "security": "none",
            "from_email": "avisos@alpha.example.com",
            "is_default": True,
        },
    )
    assert account.status_code == 201, account.text

    made = two.a.client.post(f"{API}/invitations", json={"email": "eva@alpha.example.com"})

    assert made.json()["emailed"] is True
    with two.runtime.session() as session:
        (message,) = session.scalars(select(t.Message))
    assert message.to == ["eva@alpha.example.com"]
    assert message.subject == "Invitación a Alpha SA de CV en docmail"
    assert made.json()["link"] in message.body_text and message.state == "queued"


def test_changing_ones_password_signs_out_the_other_sessions(two: Two) -> None:
    other = sign_in(two.runtime, "admin@alpha.example.com", PASSWORD)
    wrong = two.a_web.post(
        "/account/password",
        data={
            "csrf_token": csrf_of(two.a_web),
            "current_password": "nope-nope-nope",
            "new_password": "brand-new-pass-1",
            "new_password_again": "brand-new-pass-1",
        },
    )
    assert wrong.status_code == 422 and "no es correcta" in wrong.text

    changed = two.a_web.post(
        "/account/password",
        data={
            "csrf_token": csrf_of(two.a_web),
            "current_password": PASSWORD,
            "new_password": "brand-new-pass-1",
            "new_password_again": "brand-new-pass-1",
        },
    )

    assert changed.status_code == 200
    assert two.a_web.get("/documents").status_code == 200
    assert other.get("/documents", follow_redirects=False).status_code == 303
    assert sign_in(two.runtime, "admin@alpha.example.com", "brand-new-pass-1")
