"""What a template may cost: the render's deadline, size measurement, and the checks
made before an operation runs.

:mod:`docmail.templates.sandbox` calls these from its hooks (binary operators, calls of
``str``/``bytes``/``int`` methods, filters) so that an expression whose result would be
too large is refused before Python builds it, and a render stops at its deadline.
"""

from __future__ import annotations

import codecs
import encodings
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence, Sized
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from encodings.aliases import aliases as codec_aliases
from typing import Any, cast

from docmail.errors import TemplateError

MAX_FORMAT_WIDTH = 1000
MAX_INT_BITS = 256  # whole numbers are for small arithmetic, not for 9**(9**9)
MAX_SCALAR_TEXT = 400  # a number written out by % (a float with %f has up to 309 digits)
#: Decimals as large as whole numbers may be (10**77 is about 2**256), and no finer than
#: 10**-77: turning ``Decimal('1e999999')`` into an int or text takes seconds in one call.
MAX_DECIMAL_EXPONENT = 77
#: Brackets inside one another: Jinja's parser and compiler recurse once per level
#: (several Python frames each), so 300 nested parentheses exhaust the stack.
MAX_BRACKET_NESTING = 50
#: Blocks ({% for %}, {% if %}, {% macro %}...) inside one another: Python compiles a
#: template's loops into at most 20 nested blocks ("too many statically nested blocks").
MAX_BLOCK_NESTING = 16
#: Codecs written in C that run in linear time. The others are pure Python and some are
#: quadratic (``'...'.encode('punycode')`` on 10,000 distinct characters takes 16 s in one
#: call, which no deadline checked between operations can stop).
ALLOWED_CODECS = frozenset({"utf_8", "ascii", "latin_1"})
#: Error handlers whose output is no longer than the text (the others write ``\N{...}``
#: or ``&#...;`` per character, up to 35 times the input).
ALLOWED_CODEC_ERRORS = frozenset(
    {"strict", "ignore", "replace", "surrogateescape", "surrogatepass"}
)


@dataclass(frozen=True)
class RenderState:
    deadline: float
    timeout_seconds: float
    locale: str


_STATE: ContextVar[RenderState | None] = ContextVar("docmail_template_render", default=None)


@contextmanager
def rendering(timeout_seconds: float, locale: str) -> Iterator[RenderState]:
    """Make the deadline and locale of one render visible to the sandbox hooks."""
    state = RenderState(time.monotonic() + timeout_seconds, timeout_seconds, locale)
    token = _STATE.set(state)
    try:
        yield state
    finally:
        _STATE.reset(token)


def check_deadline() -> None:
    state = _STATE.get()
    if state is not None and time.monotonic() > state.deadline:
        raise TemplateError(
            f"the template took longer than {state.timeout_seconds:g} seconds to render; "
            "remove nested or very long loops"
        )


def current_locale() -> str:
    state = _STATE.get()
    if state is None:
        # Never fold locale-dependent filters at compile time (see pass_context in sandbox).
        raise TemplateError("formatting filters can only run while rendering")
    return state.locale


# --------------------------------------------------------------------------- size


def too_big(what: str, size: int, limit: int) -> TemplateError:
    return TemplateError(
        f"{what} would produce about {size:,} bytes of text or data, more than the "
        f"{limit:,} allowed; make the template produce less text"
    )


_DICT_VIEWS: tuple[type, ...] = (type({}.keys()), type({}.values()), type({}.items()))
_CONTAINERS = (list, tuple, dict, set, frozenset, *_DICT_VIEWS)
_TEXT = (str, bytes)
_HEAVY = (*_TEXT, *_CONTAINERS)
_SCALARS = frozenset({int, float, bool, type(None), Decimal, date, datetime})


def weight(value: Any, limit: int) -> int:
    """A lower bound of the size of ``value`` as text: its characters, plus one per item of
    a list, tuple, set or dict, nested ones counted each time they appear (so
    ``[[0] * 100000] * 100000`` weighs 10**10 although it takes little memory until it is
    printed or sorted). Counting stops once it passes ``limit``.
    """
    total = 0
    stack: list[Any] = [value]
    steps = 0
    while stack and total <= limit:
        steps += 1
        if steps % 65536 == 0:  # measuring a value near the limit takes a while
            check_deadline()
        item = stack.pop()
        if isinstance(item, _TEXT):
            total += len(item)
        elif isinstance(item, _CONTAINERS):
            total += len(cast(Sized, item))
            if total <= limit:
                stack.extend(_heavy_children(item))
    return total


def _heavy_children(container: Any) -> list[Any]:
    children = [*container, *container.values()] if isinstance(container, dict) else container
    if _SCALARS.issuperset(map(type, children)):  # the common case, checked in C
        return []
    return [child for child in children if isinstance(child, _HEAVY)]


def check_size(value: Any, limit: int, what: str = "an expression") -> Any:
    kind = type(value)
    if kind in _SCALARS:  # most printed values: nothing to measure
        if kind is int or kind is Decimal:
            check_number(value)
        return value
    size = len(value) if type(value) is str else weight(value, limit)
    if size > limit:
        raise too_big(what, size, limit)
    return value


def check_sizes(values: Iterable[Any], limit: int, what: str) -> None:
    for value in values:
        check_size(value, limit, what)


def check_number(value: int | Decimal) -> None:
    """Refuse whole numbers over :data:`MAX_INT_BITS` and decimals beyond 10**±77.

    Made or received by a template, such a number costs seconds in a single operation
    that no deadline can interrupt: dividing two million-bit ints, or ``|int`` of
    ``Decimal('1e999990')`` (made with ``scaleb`` or ``**``).
    """
    if type(value) is int:
        _check_int_bits(value.bit_length())
    elif isinstance(value, Decimal) and value.is_finite():
        exponent = value.as_tuple().exponent
        if value.adjusted() > MAX_DECIMAL_EXPONENT or int(exponent) < -MAX_DECIMAL_EXPONENT:
            raise TemplateError(
                f"the number {value:.6E} has more than {MAX_DECIMAL_EXPONENT} digits before "
                "or after the decimal point; use smaller numbers"
            )


def check_codec(encoding: Any, errors: Any) -> None:
    """``encode``/``decode`` only with the linear C codecs (utf-8, ascii, latin-1)."""
    name = "utf-8" if encoding is None else encoding
    if not isinstance(name, str) or not _linear_codec(name):
        shown = repr(name[:40] if isinstance(name, str | bytes) else name)
        raise TemplateError(
            f"the codec {shown} is not available in templates; use 'utf-8', 'ascii' or 'latin-1'"
        )
    if errors is not None and errors not in ALLOWED_CODEC_ERRORS:
        shown = repr(errors[:40] if isinstance(errors, str) else errors)
        raise TemplateError(
            f"the error handler {shown} is not available in templates; "
            f"use one of: {', '.join(sorted(ALLOWED_CODEC_ERRORS))}"
        )


def _linear_codec(name: str) -> bool:
    key = encodings.normalize_encoding(name).lower()
    if codec_aliases.get(key, key) not in ALLOWED_CODECS:
        return False  # decided before codecs.lookup, which may import a codec's module
    try:
        return codecs.lookup(name).name in ("utf-8", "ascii", "iso8859-1")
    except LookupError:
        return False


# --------------------------------------------------------------------------- pre-checks


_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[a-zA-Z%]")


def _check_format_widths(widths: Iterable[str | None]) -> None:
    for width in widths:
        if width == "*" or (width and int(width) > MAX_FORMAT_WIDTH):
            raise TemplateError(
                f"format widths and precisions must be written out and at most "
                f"{MAX_FORMAT_WIDTH}; got {width!r}"
            )


def _heaviest(values: Iterable[Any], limit: int) -> int:
    return max((weight(v, limit) for v in values), default=0)


def _format_values(args: Any) -> list[Any]:
    if isinstance(args, Mapping):
        return list(args.values())
    if isinstance(args, tuple | list):
        return list(args)
    return [args]


def check_percent_format(fmt: str | bytes, args: Any, limit: int) -> None:
    """Bound ``fmt % args`` before running it (also used by the ``format`` filter)."""
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    specs = _PERCENT_SPEC.findall(text)
    widest = 0
    for width, precision in specs:
        _check_format_widths((width, precision))
        widest = max(widest, int(width or 0), int(precision or 0))
    per_field = max(_heaviest(_format_values(args), limit), widest) + MAX_SCALAR_TEXT
    estimate = len(text) + len(specs) * per_field
    if estimate > limit:
        raise too_big("the % format", estimate, limit)


def _repeat_size(left: Any, right: Any, limit: int) -> int | None:
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, str | bytes | list | tuple) and isinstance(times, int):
            return weight(seq, limit) * max(times, 0)
    return None


def _check_int_bits(bits: int) -> None:
    if bits > MAX_INT_BITS:
        raise TemplateError(
            f"the result would have about {bits:,} binary digits, more than the "
            f"{MAX_INT_BITS:,} allowed; use smaller numbers"
        )


def _check_power(base: Any, exponent: Any) -> None:
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        _check_int_bits(abs(base).bit_length() * exponent)


def check_binop(op: str, left: Any, right: Any, limit: int) -> None:
    """Refuse ``*``, ``**``, ``%`` and ``+`` whose result would be too large."""
    if op == "*":
        if isinstance(left, int) and isinstance(right, int):
            _check_int_bits(abs(left).bit_length() + abs(right).bit_length())
        size = _repeat_size(left, right, limit)
        if size is not None and size > limit:
            raise too_big("repeating with *", size, limit)
    elif op == "**":
        _check_power(left, right)
    elif op == "%" and isinstance(left, str | bytes):
        check_percent_format(left, right, limit)
    elif op == "+":
        size = weight(left, limit) + weight(right, limit)
        if size > limit:
            raise too_big("joining with +", size, limit)


def _arg(args: Sequence[Any], kwargs: Mapping[str, Any], index: int, name: str) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name)


def check_width_arg(name: str, width: Any, limit: int) -> None:
    if isinstance(width, int) and width > limit:
        raise too_big(f"{name}() with {width:,}", width, limit)


def replace_size(text: str | bytes, old: Any, new: Any, count: Any) -> int:
    if not isinstance(old, str | bytes) or not isinstance(new, str | bytes):
        return len(text)
    hits = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(len(new) - len(old), 0)


def join_size(separator: str | bytes, items: Sequence[Any]) -> int:
    texts = sum(len(i) for i in items if isinstance(i, str | bytes))
    return texts + len(separator) * max(len(items) - 1, 0)


def check_text_method(
    receiver: str | bytes | int,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    limit: int,
) -> tuple[Any, ...]:
    """Bound calls of ``str``/``bytes``/``int`` methods; returns the (materialised) args."""
    if name in ("encode", "decode") and isinstance(receiver, str | bytes):
        check_codec(_arg(args, kwargs, 0, "encoding"), _arg(args, kwargs, 1, "errors"))
    elif name in ("center", "ljust", "rjust", "zfill"):
        check_width_arg(name, _arg(args, kwargs, 0, "width"), limit)
    elif name == "to_bytes":
        check_width_arg(name, _arg(args, kwargs, 0, "length"), limit)
    elif name == "translate" and isinstance(receiver, str):
        raise TemplateError("str.translate is not available in templates; use replace")
    elif isinstance(receiver, str | bytes):
        return _check_sequence_method(receiver, name, args, kwargs, limit)
    return args


def _check_sequence_method(
    receiver: str | bytes, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], limit: int
) -> tuple[Any, ...]:
    if name == "expandtabs":
        tab = _arg(args, kwargs, 0, "tabsize")
        tab = tab if isinstance(tab, int) else 8
        tabs = receiver.count("\t") if isinstance(receiver, str) else receiver.count(b"\t")
        size = len(receiver) + tabs * tab
        if size > limit:
            raise too_big("expandtabs()", size, limit)
    elif name == "replace":
        size = replace_size(receiver, args[0] if args else None, _arg(args, kwargs, 1, "new"),
                             _arg(args, kwargs, 2, "count"))  # fmt: skip
        if size > limit:
            raise too_big("replace()", size, limit)
    elif name == "join" and args:
        items = list(args[0])
        size = join_size(receiver, items)
        if size > limit:
            raise too_big("join()", size, limit)
        return (items, *args[1:])
    return args
