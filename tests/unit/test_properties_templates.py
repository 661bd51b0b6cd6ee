"""Property tests of template rendering bounds (docmail.templates).

Whatever text a company saves as a template, checking and rendering it either works
or raises docmail's ``TemplateError``: never another exception type. Rendering stops
within the engine's own time limit (loops, calls and filters check its deadline; the
test does not time anything), and what it produces is never larger than the engine's
configured maximum.
"""

from __future__ import annotations

from hypothesis import event, given, settings
from hypothesis import strategies as st

from docmail.errors import TemplateError
from docmail.templates import TemplateEngine, TemplateSource
from docmail.templates.engine import FIELDS
from tests.unit.test_templates import make_context

MAX_OUTPUT = 4096  # bytes: small, so that the bound is reached often
ENGINE = TemplateEngine(timeout_seconds=0.1, max_output_bytes=MAX_OUTPUT)

#: Pieces of Jinja syntax, names from the context, operators that grow values, filters.
FRAGMENTS = (
    "{{ ", " }}", "{% ", " %}", "{# ", " #}", "{%- ", " -%}", "for x in ", "endfor", "if ",
    "else", "endif", "set x = ", "set ns = namespace(v='ab')", "set ns.v = ns.v ~ ns.v",
    "macro m(n) ", "endmacro", "m(3)", "call m(1)", "endcall", "caller()", "loop.index",
    "range(", ")", "(", "[", "]", "{", "}", ",", ":", ".", "'", '"', "x", "ns.v", "10",
    "9", "2", "100000", "10**6", " ~ ", " + ", " * ", " ** ", " % ", " // ", " - ", " and ",
    " not ", "|join", "|list", "|length", "|string", "|upper", "|center(", "|indent(",
    "|replace('a', 'aaaa')", "|format(", "|batch(", "|slice(", "|sum", "|sort", "|unique",
    "|tojson", "|wordwrap(", "|truncate(", "|money", "|date", "|number", "|default('-')",
    "|attr('__class__')", "|map(attribute='number')", "document", "document.number",
    "document.total", "document.issue_date", "document.data", "document.data.items",
    "documents", "documents[0]", "party.name", "company.name", "sender.email", "'ab'",
    "'%s'", "'%999d'", "'{0}'.format", ".upper()", ".center(", ".ljust(", ".split()",
    ".replace(", ".join(", "__class__", "_private", "self", "cycler", "lipsum", "\n", " ",
    "ñ", "🎉",
)  # fmt: skip

jinja_soup = st.lists(st.sampled_from(FRAGMENTS), max_size=30).map("".join)
any_text = st.text(max_size=200)
templates = st.one_of(jinja_soup, any_text)

#: Valid templates whose output grows with the numbers drawn: nested loops repeating text.
growing = st.builds(
    lambda outer, inner, width, text: (
        f"{{% for i in range({outer}) %}}{{% for j in range({inner}) %}}"
        f"{{{{ {text!r} * {width} }}}}{{% endfor %}}{{% endfor %}}"
    ),
    st.integers(0, 100_000),
    st.integers(0, 1_000),
    st.integers(0, 10_000),
    st.sampled_from(["x", "ñandú ", "€", "🎉", "<b>&</b>"]),
)


def _outcome(source: TemplateSource) -> str:
    """'ok' or 'refused'; any other exception type fails the test."""
    try:
        rendered = ENGINE.render(source, make_context(), "pt_BR")
    except TemplateError as error:
        assert error.field in FIELDS
        assert error.message
        return "refused"
    for field in FIELDS:
        produced = getattr(rendered, field).encode("utf-8", "surrogatepass")
        assert len(produced) <= MAX_OUTPUT, f"{field} produced {len(produced)} bytes"
    return "ok"


@given(templates, st.sampled_from(FIELDS))
def test_any_template_text_checks_and_renders_or_raises_a_template_error(
    template: str, field: str
) -> None:
    parts = {"subject": "Factura", "body_html": "<p>Hola</p>", "body_text": "Hola"}
    parts[field] = template
    source = TemplateSource(**parts)
    try:
        ENGINE.check(source)
    except TemplateError as error:
        assert error.field == field
        assert error.problems
        event("refused at save")
    event(f"render: {_outcome(source)}")


@settings(max_examples=30)
@given(growing, st.sampled_from(FIELDS))
def test_rendered_output_never_exceeds_the_configured_maximum(template: str, field: str) -> None:
    parts = {"subject": "Factura", "body_html": "<p>Hola</p>", "body_text": "Hola"}
    parts[field] = template
    ENGINE.check(TemplateSource(**parts))  # these templates are valid: they may be saved
    event(f"render: {_outcome(TemplateSource(**parts))}")
