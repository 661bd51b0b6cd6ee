"""The template engine: built-in defaults, static checks, rendering and its limits."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from docmail.domain.documents import DEFAULT_TYPE_CODES, LANGUAGES, default_type
from docmail.errors import TemplateError, ValidationError
from docmail.templates import TemplateEngine, TemplateSource, locale_for

COUNTRY_OF_LANGUAGE = {"es": "MX", "pt": "BR", "en": "US"}
CURRENCY_OF_COUNTRY = {"MX": "MXN", "CO": "COP", "BR": "BRL", "US": "USD"}


@pytest.fixture(scope="module")
def engine() -> TemplateEngine:
    return TemplateEngine()


def make_document(
    doc_type: str = "invoice", language: str = "es", country: str = "MX", **changes: Any
) -> dict[str, Any]:
    known = default_type(doc_type)
    document: dict[str, Any] = {
        "type": doc_type,
        "type_name": known.names[language] if known else "Orden de compra",
        "number": "A-1001",
        "issue_date": date(2025, 1, 24),
        "due_date": date(2025, 2, 23),
        "total": Decimal("11600.00"),
        "currency": CURRENCY_OF_COUNTRY[country],
        "status": "stamped",
        "fiscal_id": "6F9C2B1E-3D4A-4F5B-8C7D-1A2B3C4D5E6F",
        "data": {
            "valid_until": "2025-02-28",
            "barcode": "34191.79001 01043.510047 91020.150008 1 99990000011600",
            "period": "2025-01",
        },
        "attachments": [
            {"filename": "A-1001.pdf", "content_type": "application/pdf", "size": 48213},
            {"filename": "A-1001.xml", "content_type": "application/xml", "size": 5120},
        ],
    }
    document.update(changes)
    return document


def make_context(
    document: dict[str, Any] | None = None,
    *,
    documents: list[dict[str, Any]] | None = None,
    country: str = "MX",
    party_name: str = "Cliente Ejemplo SA de CV",
) -> dict[str, Any]:
    document = document or make_document(country=country)
    return {
        "document": document,
        "documents": documents or [document],
        "party": {"code": "C001", "name": party_name, "tax_id": "XAXX010101000", "email": None},
        "company": {"name": "ACME SA de CV", "country": country},
        "sender": {"name": "Ana López", "email": "ana@acme.example"},
    }


def source(subject: str = "s", body_html: str = "h", body_text: str = "t") -> TemplateSource:
    return TemplateSource(subject=subject, body_html=body_html, body_text=body_text)


def render_html(
    engine: TemplateEngine, body_html: str, context: dict[str, Any] | None = None
) -> str:
    rendered = engine.render(source(body_html=body_html), context or make_context(), "es_MX")
    return rendered.body_html


def render_failure(engine: TemplateEngine, body_html: str) -> TemplateError:
    with pytest.raises(TemplateError) as excinfo:
        render_html(engine, body_html)
    return excinfo.value


# --------------------------------------------------------------------------- defaults

ALL_DEFAULTS = [(code, language) for code in DEFAULT_TYPE_CODES for language in LANGUAGES]


@pytest.mark.parametrize(("doc_type", "language"), [*ALL_DEFAULTS, ("document", "es")])
def test_every_default_template_passes_the_check(
    engine: TemplateEngine, doc_type: str, language: str
) -> None:
    engine.check(engine.default_source(doc_type, language))


@pytest.mark.parametrize(("doc_type", "language"), ALL_DEFAULTS)
def test_every_default_template_renders_a_realistic_email(
    engine: TemplateEngine, doc_type: str, language: str
) -> None:
    country = COUNTRY_OF_LANGUAGE[language]
    document = make_document(doc_type, language, country)
    context = make_context(document, country=country)

    email = engine.render(
        engine.default_source(doc_type, language), context, locale_for(language, country)
    )

    for part in (email.body_html, email.body_text):
        assert "Cliente Ejemplo SA de CV" in part
        assert "A-1001" in part
        assert "ACME SA de CV" in part
        assert "A-1001.pdf" in part
        assert "None" not in part
        assert "[[" not in part
    assert document["type_name"] in email.subject
    assert "ACME SA de CV" in email.subject
    assert email.body_html.startswith("<!DOCTYPE html>")
    assert "\n\n\n" not in email.body_text


@pytest.mark.parametrize("language", LANGUAGES)
def test_unknown_document_type_gets_the_generic_template_of_its_language(
    engine: TemplateEngine, language: str
) -> None:
    assert engine.default_source("purchase_order", language) == engine.default_source(
        "document", language
    )


def test_default_templates_differ_by_type_and_language(engine: TemplateEngine) -> None:
    sources = {engine.default_source(code, lang) for code, lang in ALL_DEFAULTS}
    assert len(sources) == len(ALL_DEFAULTS)


def test_default_source_rejects_an_unsupported_language(engine: TemplateEngine) -> None:
    with pytest.raises(ValidationError) as excinfo:
        engine.default_source("invoice", "fr")
    assert excinfo.value.field == "language"


def test_default_templates_are_self_contained(engine: TemplateEngine) -> None:
    for code, language in ALL_DEFAULTS:
        text = " ".join(vars(engine.default_source(code, language)).values())
        assert "{% include" not in text
        assert "{% extends" not in text
        assert "{% import" not in text


def test_spanish_invoice_subject_names_type_number_and_company(engine: TemplateEngine) -> None:
    email = engine.render(engine.default_source("invoice", "es"), make_context(), "es_MX")
    assert email.subject == "Factura A-1001 de ACME SA de CV"


def test_spanish_invoice_shows_total_dates_and_fiscal_folio(engine: TemplateEngine) -> None:
    email = engine.render(engine.default_source("invoice", "es"), make_context(), "es_MX")
    text = email.body_text
    assert text.startswith("Estimado(a) Cliente Ejemplo SA de CV:")
    assert "Total a pagar: $11,600.00" in text
    assert "Fecha de emisión: 24 de enero de 2025" in text
    assert "Fecha de vencimiento: 23 de febrero de 2025" in text
    assert "Folio fiscal (UUID): 6F9C2B1E-3D4A-4F5B-8C7D-1A2B3C4D5E6F" in text
    assert "- A-1001.xml" in text
    assert "Saludos cordiales,\nAna López\nACME SA de CV" in text


def test_colombian_invoice_calls_the_fiscal_id_cufe(engine: TemplateEngine) -> None:
    context = make_context(make_document(country="CO"), country="CO")
    email = engine.render(engine.default_source("invoice", "es"), context, locale_for("es", "CO"))
    assert "CUFE: 6F9C2B1E" in email.body_text
    assert "$ 11.600,00" in email.body_text


def test_portuguese_nfe_shows_the_chave_de_acesso(engine: TemplateEngine) -> None:
    context = make_context(make_document("nfe", "pt", "BR"), country="BR")
    email = engine.render(engine.default_source("nfe", "pt"), context, "pt_BR")
    assert "Chave de acesso: 6F9C2B1E" in email.body_text
    assert "R$ 11.600,00" in email.body_text
    assert email.subject == "NF-e A-1001 - ACME SA de CV"


def test_boleto_shows_due_date_and_linha_digitavel(engine: TemplateEngine) -> None:
    context = make_context(make_document("boleto", "pt", "BR"), country="BR")
    email = engine.render(engine.default_source("boleto", "pt"), context, "pt_BR")
    assert "com vencimento em 23 de fevereiro de 2025" in email.body_text
    assert "Linha digitável:\n34191.79001" in email.body_text
    assert "Linha digitável:<br>\n34191.79001" in email.body_html


def test_boleto_without_barcode_omits_the_linha_digitavel(engine: TemplateEngine) -> None:
    document = make_document("boleto", "pt", "BR", data={})
    email = engine.render(engine.default_source("boleto", "pt"), make_context(document), "pt_BR")
    assert "Linha digitável" not in email.body_text


def test_quote_thanks_for_interest_and_states_validity(engine: TemplateEngine) -> None:
    document = make_document("quote", "es", due_date=None, fiscal_id=None)
    email = engine.render(engine.default_source("quote", "es"), make_context(document), "es_MX")
    assert "Gracias por su interés" in email.body_text
    assert "válida hasta el 28 de febrero de 2025" in email.body_text


def test_quote_without_valid_until_does_not_mention_validity(engine: TemplateEngine) -> None:
    document = make_document("quote", "en", data={})
    email = engine.render(engine.default_source("quote", "en"), make_context(document), "en_US")
    assert "valid until" not in email.body_text


def test_statement_subject_gives_the_statement_date(engine: TemplateEngine) -> None:
    document = make_document("statement", "en", "US")
    email = engine.render(engine.default_source("statement", "en"), make_context(document), "en_US")
    assert email.subject == "Account statement as of January 24, 2025 from ACME SA de CV"
    assert "Balance: $11,600.00" in email.body_text


def test_missing_optional_values_leave_out_their_lines(engine: TemplateEngine) -> None:
    document = make_document(due_date=None, fiscal_id=None, total=None, attachments=[])
    email = engine.render(engine.default_source("invoice", "es"), make_context(document), "es_MX")
    for part in (email.body_text, email.body_html):
        assert "vencimiento" not in part
        assert "Folio fiscal" not in part
        assert "Total a pagar" not in part
        assert "Archivos adjuntos" not in part


def test_one_email_can_list_several_documents(engine: TemplateEngine) -> None:
    first = make_document()
    second = make_document(number="A-1002", attachments=[{"filename": "A-1002.pdf"}])
    context = make_context(first, documents=[first, second])
    email = engine.render(engine.default_source("invoice", "es"), context, "es_MX")
    assert email.subject == "Factura A-1001, A-1002 de ACME SA de CV"
    assert "las facturas que se detallan a continuación" in email.body_text
    assert "Documento: Factura A-1002" in email.body_text
    assert "- A-1002.pdf" in email.body_text


def test_html_body_escapes_values_and_text_body_does_not(engine: TemplateEngine) -> None:
    context = make_context(party_name="Smith & <Sons>")
    email = engine.render(engine.default_source("invoice", "en"), context, "en_US")
    assert "Dear Smith &amp; &lt;Sons&gt;," in email.body_html
    assert "<Sons>" not in email.body_html
    assert email.body_text.startswith("Dear Smith & <Sons>,")


# --------------------------------------------------------------------------- check


def check_problems(engine: TemplateEngine, **parts: str) -> list[dict[str, Any]]:
    with pytest.raises(TemplateError) as excinfo:
        engine.check(source(**parts))
    return excinfo.value.problems


def test_subject_with_newline_is_rejected(engine: TemplateEngine) -> None:
    [problem] = check_problems(engine, subject="Factura {{ document.number }}\nBcc: x@evil.test")
    assert problem["field"] == "subject"
    assert problem["line"] == 1
    assert "single line" in problem["message"]


def test_subject_with_carriage_return_is_rejected(engine: TemplateEngine) -> None:
    [problem] = check_problems(engine, subject="Factura\r")
    assert problem["field"] == "subject"


def test_syntax_error_is_reported_with_field_and_line(engine: TemplateEngine) -> None:
    with pytest.raises(TemplateError) as excinfo:
        engine.check(source(body_text="Hola\n\n{% if document.number %}sin cerrar"))
    error = excinfo.value
    assert error.field == "body_text"
    assert error.line == 3
    assert "syntax error" in error.message
    assert error.to_dict()["problems"][0]["line"] == 3


def test_unknown_variable_is_reported_with_a_suggestion(engine: TemplateEngine) -> None:
    [problem] = check_problems(engine, body_html="<p>\n{{ documnet.number }}</p>")
    assert problem["line"] == 2
    assert "unknown variable 'documnet'" in problem["message"]
    assert "did you mean 'document'" in problem["message"]


@pytest.mark.parametrize(
    "expression",
    [
        "document.numero",
        "document['numero']",
        "party.rfc",
        "company.address",
        "sender.phone",
        "documents[0].numero",
        "document.attachments[0].path",
    ],
)
def test_unknown_attribute_of_a_known_object_is_reported(
    engine: TemplateEngine, expression: str
) -> None:
    [problem] = check_problems(engine, body_text=f"{{{{ {expression} }}}}")
    assert "has no attribute" in problem["message"]


def test_loop_variables_over_known_lists_are_checked(engine: TemplateEngine) -> None:
    template = (
        "{% for doc in documents %}{{ doc.numero }}"
        "{% for file in doc.attachments %}{{ file.name }}{% endfor %}{% endfor %}"
    )
    problems = check_problems(engine, body_text=template)
    assert ["'doc' has no attribute 'numero'" in p["message"] for p in problems] == [True, False]
    assert "'file' has no attribute 'name'" in problems[1]["message"]


def test_anything_under_document_data_is_accepted(engine: TemplateEngine) -> None:
    engine.check(source(body_text="{{ document.data.pedido.cliente.referencia }}"))


def test_names_the_template_defines_itself_are_accepted(engine: TemplateEngine) -> None:
    template = (
        "{% set total = document.total|money(document.currency) %}{{ total }}"
        "{% macro line(label, value) %}{{ label }}: {{ value }}{% endmacro %}"
        "{{ line('Folio', document.fiscal_id) }}"
        "{% for doc in documents %}{{ loop.index }} {{ doc.number }}{% endfor %}"
        "{{ range(3)|join(',') }} {{ namespace(a=1).a }}"
    )
    engine.check(source(body_text=template))


def test_unknown_filter_is_reported(engine: TemplateEngine) -> None:
    [problem] = check_problems(engine, body_text="{{ document.total|moneda }}")
    assert "unknown filter 'moneda'" in problem["message"]
    assert "did you mean 'money'" in problem["message"]


def test_unknown_filter_inside_a_condition_is_reported(engine: TemplateEngine) -> None:
    [problem] = check_problems(engine, body_text="{% if party.name %}{{ 1|nope }}{% endif %}")
    assert "unknown filter 'nope'" in problem["message"]


def test_random_filter_is_not_available(engine: TemplateEngine) -> None:
    [problem] = check_problems(engine, body_text="{{ documents|random }}")
    assert "unknown filter 'random'" in problem["message"]


@pytest.mark.parametrize(
    "statement",
    ["{% include 'other.html' %}", "{% extends 'base.html' %}", "{% import 'm.html' as m %}"],
)
def test_templates_cannot_include_or_extend_other_templates(
    engine: TemplateEngine, statement: str
) -> None:
    [problem] = check_problems(engine, body_html=statement)
    assert "cannot include, import or extend" in problem["message"]


def test_all_problems_of_all_parts_are_listed_at_once(engine: TemplateEngine) -> None:
    with pytest.raises(TemplateError) as excinfo:
        engine.check(
            source(
                subject="{{ party.nombre }}\n",
                body_html="{{ documento }}\n{{ document.total|moneda }}",
                body_text="{% for %}",
            )
        )
    error = excinfo.value
    fields_and_lines = [(p["field"], p["line"]) for p in error.problems]
    assert fields_and_lines == [
        ("subject", 1),
        ("subject", 1),
        ("body_html", 1),
        ("body_html", 2),
        ("body_text", 1),
    ]
    assert (error.field, error.line) == ("subject", 1)
    assert error.message.startswith("the template has 5 problems:")


# --------------------------------------------------------------------------- render


def test_rendered_subject_is_collapsed_to_one_line(engine: TemplateEngine) -> None:
    context = make_context(make_document(number="A-1\r\nBcc: x@evil.test\t "))
    email = engine.render(source(subject="  Factura {{ document.number }}  "), context, "es_MX")
    assert email.subject == "Factura A-1 Bcc: x@evil.test"


def test_undefined_top_level_name_fails_at_render(engine: TemplateEngine) -> None:
    context = make_context()
    del context["sender"]
    with pytest.raises(TemplateError) as excinfo:
        engine.render(source(body_text="Hola\n{{ sender.name }}"), context, "es_MX")
    assert excinfo.value.field == "body_text"
    assert excinfo.value.line == 2
    assert "'sender' is undefined" in excinfo.value.message


def test_undefined_name_can_still_be_tested(engine: TemplateEngine) -> None:
    html = render_html(engine, "{{ extra is defined }} {{ extra|default('-') }}")
    assert html == "False -"


def test_missing_attributes_and_none_render_as_empty_text(engine: TemplateEngine) -> None:
    context = make_context(make_document(fiscal_id=None))
    html = render_html(
        engine,
        "[{{ document.fiscal_id }}][{{ document.data.nope.deeper }}]"
        "[{{ 'A' ~ document.fiscal_id }}]",
        context,
    )
    assert html == "[][][A]"


def test_filters_follow_the_locale_of_the_render(engine: TemplateEngine) -> None:
    template = source(body_text="{{ document.total|money('BRL') }} {{ document.issue_date|date }}")
    assert engine.render(template, make_context(), "pt_BR").body_text == (
        "R$ 11.600,00 24 de janeiro de 2025\n"
    )
    assert engine.render(template, make_context(), "en_US").body_text == (
        "BRL 11,600.00 January 24, 2025\n"
    )


def test_number_and_date_filters_take_options(engine: TemplateEngine) -> None:
    html = render_html(engine, "{{ 1234.5|number(2) }} {{ document.issue_date|date('short') }}")
    assert html == "1,234.50 24/01/25"


def test_bad_value_for_a_filter_is_a_template_error(engine: TemplateEngine) -> None:
    error = render_failure(engine, "{{ 'mucho'|money('MXN') }}")
    assert error.field == "body_html"
    assert "not a number" in error.message


def test_data_keys_win_over_dict_methods(engine: TemplateEngine) -> None:
    context = make_context(make_document(data={"items": ["Tornillos", "Tuercas"]}))
    assert render_html(engine, "{{ document.data.items|join(', ') }}", context) == (
        "Tornillos, Tuercas"
    )


def test_render_rejects_an_unknown_locale(engine: TemplateEngine) -> None:
    with pytest.raises(ValidationError) as excinfo:
        engine.render(source(), make_context(), "xx_YY")
    assert excinfo.value.field == "locale"


def test_plain_text_body_has_no_trailing_spaces_or_runs_of_blank_lines(
    engine: TemplateEngine,
) -> None:
    email = engine.render(source(body_text="\n\nA   \n\n\n\nB\n\n"), make_context(), "es_MX")
    assert email.body_text == "A\n\nB\n"


def test_renders_in_threads_keep_their_own_locale(engine: TemplateEngine) -> None:
    template = source(body_text="{{ document.total|money(document.currency) }}")

    def render(locale: str) -> str:
        return engine.render(template, make_context(), locale).body_text

    locales = ["es_MX", "pt_BR", "en_US"] * 20
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(render, locales))
    expected = {"es_MX": "$11,600.00\n", "pt_BR": "MXN 11.600,00\n", "en_US": "MXN 11,600.00\n"}
    assert results == [expected[locale] for locale in locales]


# --------------------------------------------------------------------------- sandbox and limits


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ document.__class__ }}",
        "{{ document.data.__class__.__subclasses__() }}",
        "{{ joiner.__init__.__globals__['os'] }}",
        "{{ document.data.pop('period') }}",
        "{{ document.attachments.append(1) }}",
    ],
)
def test_sandbox_escapes_are_template_errors_naming_the_field(
    engine: TemplateEngine, template: str
) -> None:
    error = render_failure(engine, template)
    assert error.field == "body_html"
    assert "not allowed" in error.message


def test_nested_loops_time_out_quickly(engine: TemplateEngine) -> None:
    template = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    error = render_failure(engine, template)
    assert time.monotonic() - started < 3
    assert "longer than 2 seconds" in error.message


def test_loops_over_a_stored_range_also_time_out() -> None:
    engine = TemplateEngine(timeout_seconds=0.2)
    template = "{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    with pytest.raises(TemplateError, match=r"longer than 0\.2 seconds"):
        engine.render(source(body_text=template), make_context(), "es_MX")
    assert time.monotonic() - started < 1.5


def test_exponential_macro_recursion_times_out() -> None:
    engine = TemplateEngine(timeout_seconds=0.2)
    template = (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}"
    )
    with pytest.raises(TemplateError, match="longer than"):
        engine.render(source(subject=template), make_context(), "es_MX")


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'x' * 100000000 }}",
        "{{ [0] * 100000000 }}",
        "{{ 9 ** (9 ** 9) }}",
        "{{ 9**9**9**9 }}",
        "{{ '%0999999999d' % 1 }}",
        "{{ '%*d' % (999999999, 1) }}",
        "{{ '%s' * 1000000 % ((('y' * 1000000),) * 1000000) }}",
        "{{ 'a'|center(1000000000) }}",
        "{{ 'a'.ljust(1000000000) }}",
        "{{ (1).to_bytes(1000000000, 'big') }}",
        "{{ ('\t' * 1000000).expandtabs(1000000) }}",
        "{{ ('x' * 1000000).replace('', 'yy') }}",
        "{{ ('x' * 1000000)|replace('x', 'yyy') }}",
        "{{ ('x\n' * 1000000)|indent(1000) }}",
        "{{ ('x' * 1000000)|wordwrap(1, wrapstring='--') }}",
        "{{ '%s'|format('y' * 2000000) ~ 'x' * 200000 }}",
        "{{ '{:>999999999}'.format(1) }}",
        "{% set x = 'x' * 1000000 %}{{ x ~ x ~ x }}",
        "{% set x = 'x' * 1000000 %}{{ x + x + x }}",
        "{% set x = 'x' * 1000000 %}{{ [x, x, x]|join }}",
        "{% set x = 'x' * 1000000 %}{{ ''.join([x, x, x]) }}",
        "{% set x = 'x' * 1000000 %}{{ [1, 2, 3, 4]|join(x) }}",
        "{% set x = 'x' * 1000 %}{% set y %}{% for i in range(10000) %}{{ x }}{% endfor %}"
        "{% endset %}{{ y|length }}",
        "{% set x = 'x' * 1000 %}{% macro m() %}{% for i in range(10000) %}{{ x }}{% endfor %}"
        "{% endmacro %}{{ m()|length }}",
        "{% set y = [0] * 100000 %}{{ [y] * 100000 }}",
        "{% set y = [0] * 1000000 %}{% set z = [y, y, y] %}{{ z }}",
        "{% set y = [0] * 1000000 %}{% set z = [y, y, y] %}{{ z|sort|length }}",
        "{% set y = [0] * 1000000 %}{% set z = [y, y, y] %}{{ z|tojson }}",
        "{% set y = [0] * 1000000 %}{% set z = [y, y, y] %}{{ z ~ '' }}",
        "{% set y = [0] * 1000000 %}{% set z = [y, y, y] %}{{ ''.join(z) }}",
        "{% set y = [0] * 1000000 %}{{ '%s' % ([y, y, y],) }}",
        "{% set ns = namespace(x=2 ** 100) %}{% for i in range(40) %}"
        "{% set ns.x = ns.x * ns.x %}{% endfor %}",
        "{{ [1]|batch(1000000000, 0)|list }}",
        "{{ range(1000000000) }}",
        "{{ lipsum(100000) }}",
    ],
)
def test_templates_cannot_build_huge_values(engine: TemplateEngine, template: str) -> None:
    started = time.monotonic()
    error = render_failure(engine, template)
    assert time.monotonic() - started < 1.5
    assert error.field == "body_html"


def test_output_beyond_the_limit_is_refused() -> None:
    engine = TemplateEngine(max_output_bytes=1000)
    template = "{% for i in range(1000) %}{{ document.number }} {% endfor %}"
    with pytest.raises(TemplateError, match="more than 1,000 bytes") as excinfo:
        engine.render(source(body_text=template), make_context(), "es_MX")
    assert excinfo.value.field == "body_text"


def test_output_limit_counts_bytes_not_characters() -> None:
    engine = TemplateEngine(max_output_bytes=100)
    template = "{{ 'ñ' * 60 }}"
    with pytest.raises(TemplateError, match="bytes"):
        engine.render(source(body_text=template), make_context(), "es_MX")


def test_runtime_error_reports_the_line(engine: TemplateEngine) -> None:
    error = render_failure(engine, "uno\ndos\n{{ 1 / 0 }}")
    assert error.line == 3
    assert error.message.startswith("body_html line 3:")
    assert error.problems == [
        {
            "field": "body_html",
            "line": 3,
            "message": "ZeroDivisionError: division by zero; correct the expression on this line",
        }
    ]


def test_engine_limits_must_be_positive() -> None:
    with pytest.raises(ValidationError):
        TemplateEngine(timeout_seconds=0)
    with pytest.raises(ValidationError):
        TemplateEngine(max_output_bytes=-1)


# --------------------------------------------------------------------------- locale_for


@pytest.mark.parametrize(
    ("language", "country", "expected"),
    [
        ("es", "MX", "es_MX"),
        ("es", "CO", "es_CO"),
        ("es", "co", "es_CO"),
        ("es", None, "es_MX"),
        ("es", "", "es_MX"),
        ("es", "ZZ", "es_MX"),
        ("es", "AR", "es_AR"),
        ("pt", "BR", "pt_BR"),
        ("pt", None, "pt_BR"),
        ("pt", "MX", "pt_BR"),
        ("en", None, "en_US"),
        ("en", "MX", "en_US"),
        ("en", "GB", "en_GB"),
    ],
)
def test_locale_for_picks_the_regional_variant_when_known(
    language: str, country: str | None, expected: str
) -> None:
    assert locale_for(language, country) == expected


def test_locale_for_rejects_an_unsupported_language() -> None:
    with pytest.raises(ValidationError):
        locale_for("fr", "FR")
