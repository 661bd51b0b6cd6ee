"""Recipient rules: contacts by role, fallbacks and warnings."""

from docmail.domain.documents import DocumentTypeRule, Fallback, default_type
from docmail.domain.recipients import ContactInfo, PartyInfo, plan_recipients

FINANCE = ContactInfo("Ana Finanzas", "ana@cliente.mx", ("finance",))
EINVOICE = ContactInfo("Edu Fiscal", "edu@cliente.mx", ("einvoice",))
OTHER = ContactInfo("Otro", "otro@cliente.mx", ())
PARTY = PartyInfo("C1", "Cliente SA", "general@cliente.mx", (FINANCE, EINVOICE, OTHER))


def rule(code: str) -> DocumentTypeRule:
    found = default_type(code)
    assert found is not None
    return found.rule


def emails(mailboxes: list) -> list[str]:
    return [m.email for m in mailboxes]


def test_boletos_go_to_finance_contacts_only() -> None:
    plan = plan_recipients(rule("boleto"), PARTY)
    assert emails(plan.to) == ["ana@cliente.mx"]
    assert plan.warnings == []


def test_nfe_goes_to_einvoice_contacts_only() -> None:
    assert emails(plan_recipients(rule("nfe"), PARTY).to) == ["edu@cliente.mx"]


def test_invoice_goes_to_finance_and_einvoice_contacts() -> None:
    assert emails(plan_recipients(rule("invoice"), PARTY).to) == [
        "ana@cliente.mx",
        "edu@cliente.mx",
    ]


def test_quote_always_needs_a_typed_address() -> None:
    plan = plan_recipients(rule("quote"), PARTY)
    assert plan.to == []
    assert plan.manual_address_required


def test_missing_role_falls_back_to_general_email_with_a_warning() -> None:
    party = PartyInfo("C2", "Solo General", "info@general.mx", (OTHER,))
    plan = plan_recipients(rule("cash_receipt"), party)
    assert emails(plan.to) == ["info@general.mx"]
    assert "no contact with role finance; using general email info@general.mx" in plan.warnings


def test_missing_role_without_general_email_asks_for_an_address() -> None:
    party = PartyInfo("C3", "Nadie", None, ())
    plan = plan_recipients(rule("invoice"), party)
    assert plan.to == [] and plan.manual_address_required
    assert "no general email" in plan.warnings[0]


def test_fallback_none_leaves_to_empty_even_with_general_email() -> None:
    strict = DocumentTypeRule("x", "X", ("legal",), fallback=Fallback.NONE)
    plan = plan_recipients(strict, PARTY)
    assert plan.to == [] and plan.manual_address_required


def test_bouncing_contacts_are_skipped_with_a_warning() -> None:
    bouncing = ContactInfo("Bounce", "bad@cliente.mx", ("finance",), True, "550 5.1.1 unknown")
    party = PartyInfo("C4", "Con Rebote", None, (bouncing, FINANCE))
    plan = plan_recipients(rule("boleto"), party)
    assert emails(plan.to) == ["ana@cliente.mx"]
    assert any("bad@cliente.mx" in w and "bouncing" in w for w in plan.warnings)


def test_cc_roles_never_repeat_a_to_address() -> None:
    both = ContactInfo("Both", "both@x.mx", ("finance", "legal"))
    custom = DocumentTypeRule("y", "Y", ("finance",), cc_roles=("legal",))
    plan = plan_recipients(custom, PartyInfo("C5", "P", None, (both,)))
    assert emails(plan.to) == ["both@x.mx"] and plan.cc == []
