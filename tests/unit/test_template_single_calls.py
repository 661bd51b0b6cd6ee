"""Single calls a deadline checked between template operations cannot interrupt.

The render deadline (2 s) is checked at every loop step, call, attribute lookup and
filter, so one call that runs for seconds on its own (a pure-Python codec, dividing
million-bit numbers, turning ``Decimal('1e999990')`` into an int) is refused before it
runs; and a template nested deeper than Jinja's parser can recurse is refused with its
line when it is checked, not with a RecursionError.
"""

from __future__ import annotations

import time

import pytest

from docmail.errors import TemplateError
from docmail.templates import TemplateEngine, TemplateSource
from docmail.templates.limits import MAX_BLOCK_NESTING, MAX_BRACKET_NESTING
from tests.unit.test_templates import make_context, render_failure, render_html

#: 10,000 distinct characters: punycode's pure-Python encoder took ~16 s on them.
DISTINCT = "".join(chr(c) for c in range(0x100, 0x100 + 10_000))


@pytest.fixture(scope="module")
def engine() -> TemplateEngine:
    return TemplateEngine()  # the default 2 second deadline


def check_failure(engine: TemplateEngine, body_html: str) -> TemplateError:
    with pytest.raises(TemplateError) as excinfo:
        engine.check(TemplateSource("Factura", body_html, "Hola"))
    return excinfo.value


def test_punycode_on_ten_thousand_distinct_characters_is_refused_within_the_deadline(
    engine: TemplateEngine,
) -> None:
    started = time.monotonic()
    error = render_failure(engine, "<p>Hola</p>\n{{ '" + DISTINCT + "'.encode('punycode') }}")
    assert time.monotonic() - started < 3
    assert "'punycode'" in error.message
    assert error.field == "body_html" and error.line == 2


@pytest.mark.parametrize(
    "call",
    [
        "'x'.encode('idna')",
        "'x'.encode(encoding='utf-16')",
        "'x'.encode('PUNYCODE')",
        "'x'.encode().decode('punycode')",
        "'x'.encode().decode('unicode_escape')",
        "'x'.encode('utf-8').decode(encoding='raw_unicode_escape')",
    ],
)
def test_codecs_other_than_utf8_ascii_and_latin1_are_refused_naming_the_codec(
    engine: TemplateEngine, call: str
) -> None:
    error = render_failure(engine, "{{ " + call + " }}")
    assert "codec" in error.message
    codec = call.rsplit("'", 2)[-2]
    assert repr(codec) in error.message


def test_utf8_ascii_and_latin1_under_any_of_their_names_still_encode_and_decode(
    engine: TemplateEngine,
) -> None:
    template = (
        "{{ 'añó'.encode()|length }} {{ 'añó'.encode('UTF8').decode('u8') }} "
        "{{ 'añó'.encode('latin1')|length }} {{ 'añó'.encode('ISO-8859-1').decode('l1') }} "
        "{{ 'abc'.encode('us-ascii').decode('ascii') }} {{ 'añ'.encode('ascii', 'ignore') }}"
    )
    assert render_html(engine, template) == "5 añó 3 añó abc b&#39;a&#39;"


@pytest.mark.parametrize("handler", ["namereplace", "xmlcharrefreplace", "backslashreplace"])
def test_error_handlers_that_multiply_the_text_are_refused(
    engine: TemplateEngine, handler: str
) -> None:
    error = render_failure(engine, "{{ ('é' * 100).encode('ascii', '" + handler + "') }}")
    assert repr(handler) in error.message


@pytest.mark.parametrize(
    "template",
    [
        # two million-bit numbers took 6 s to divide, in one operation
        "{% set x = ('f' * 1000000)|int(base=16) %}{% set y = ('f' * 500000)|int(base=16) %}"
        "{{ (x // y) % 10 }}",
        "{{ (1).from_bytes(('x' * 1000000).encode(), 'big') % 7 }}",
        "{{ 1e308|int }}",
    ],
)
def test_whole_numbers_made_by_the_template_are_bounded_before_they_cost_seconds(
    engine: TemplateEngine, template: str
) -> None:
    started = time.monotonic()
    error = render_failure(engine, template)
    assert time.monotonic() - started < 1
    assert "binary digits" in error.message


@pytest.mark.parametrize(
    "template",
    [
        "{{ document.total.scaleb(999990)|int % 7 }}",  # 31 s to turn into an int
        "{{ '%d' % (document.total ** 50000) }}",  # 38 s
        "{{ document.total.scaleb(999990).to_integral()|int % 7 }}",
        "{{ document.total.scaleb(-999990) }}",
    ],
)
def test_decimals_made_by_the_template_are_bounded_before_they_cost_seconds(
    engine: TemplateEngine, template: str
) -> None:
    started = time.monotonic()
    error = render_failure(engine, template)
    assert time.monotonic() - started < 1
    assert "digits before or after the decimal point" in error.message


def test_ordinary_money_arithmetic_still_renders(engine: TemplateEngine) -> None:
    template = "{{ document.total * 2 }} {{ (document.total / 3)|round(2) }} {{ 2**64 }}"
    assert render_html(engine, template) == "23200.00 3866.67 18446744073709551616"


@pytest.mark.parametrize(
    "nested",
    [
        "{{ " + "(" * 10_000 + "1" + ")" * 10_000 + " }}",
        "{{ " + "[" * 10_000 + "]" * 10_000 + " }}",
        "{% if 1 %}" * 10_000 + "x" + "{% endif %}" * 10_000,
        "{% for i in [1] %}" * 30 + "x" + "{% endfor %}" * 30,
        "{% set x %}" * 30 + "x" + "{% endset %}" * 30,
    ],
)
def test_nesting_deeper_than_the_parser_takes_is_refused_with_its_line(
    engine: TemplateEngine, nested: str
) -> None:
    error = check_failure(engine, "<p>Hola</p>\n<p>\n" + nested)
    assert error.field == "body_html"
    assert error.line == 3
    assert "nested" in error.message


@pytest.mark.parametrize("chain", ["1" + " + 1" * 20_000, "document" + ".data" * 20_000])
def test_an_expression_too_long_to_compile_is_refused_with_its_line(
    engine: TemplateEngine, chain: str
) -> None:
    error = check_failure(engine, "<p>Hola</p>\n{{ 1 }}\n{{ " + chain + " }}\n{{ 2 }}")
    assert error.line == 3
    assert "too long or nested too deeply" in error.message


def test_nesting_up_to_the_limits_is_checked_and_rendered(engine: TemplateEngine) -> None:
    blocks = MAX_BLOCK_NESTING - 1  # one more level for the brackets' {{ }} below
    template = (
        "{% for i in [1] %}{% if i %}" * (blocks // 2)
        + "{{ "
        + "(" * MAX_BRACKET_NESTING
        + "document.number"
        + ")" * MAX_BRACKET_NESTING
        + " }}"
        + "{% endif %}{% endfor %}" * (blocks // 2)
    )
    engine.check(TemplateSource("Factura", template, "Hola"))
    assert render_html(engine, template, make_context()) == "A-1001"
