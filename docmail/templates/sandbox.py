"""A Jinja sandbox that also bounds time and memory.

Jinja's :class:`ImmutableSandboxedEnvironment` already stops templates from reaching
Python internals (``''.__class__``) and from mutating lists and dicts. Company
templates are written by people we do not control, so this module adds limits on
what a template may *cost*:

* **Time**: every loop step, call, attribute lookup and filter checks the render's
  deadline (loops are wrapped with a guard when the template is compiled).
* **Memory**: operations whose result can grow faster than their inputs (``*``,
  ``**``, ``%``, ``~``, ``+``, ``str.center``, ``replace``, ``indent``, ``join``...)
  are checked *before* they run; every produced text or list is checked after;
  text collected in macros and ``{% set %}`` blocks is checked before it is joined.
  ``str.format`` is refused (its field widths cannot be bounded cheaply).
* **Names**: a missing top-level name fails as soon as it is used, while a missing
  attribute of a known object (``document.data.valid_until``) or ``None`` renders as
  empty text, so optional ERP fields need no ``default`` filter.

The per-render state (deadline, locale) lives in a :class:`~contextvars.ContextVar`,
so one environment can serve many renders, including concurrent ones in threads.
"""

from __future__ import annotations

import inspect
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Sized
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache, wraps
from types import BuiltinMethodType, MethodType
from typing import Any, cast

from jinja2 import ChainableUndefined, Template, Undefined, nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS, make_attrgetter
from jinja2.runtime import Context
from jinja2.sandbox import MAX_RANGE, ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, missing

from docmail.errors import TemplateError
from docmail.templates import formatting

LOOP_GUARD_FILTER = "_docmail_loop_guard"
MAX_FORMAT_WIDTH = 1000
MAX_INT_BITS = 256  # whole numbers are for small arithmetic, not for 9**(9**9)
MAX_SCALAR_TEXT = 400  # a number written out by % (a float with %f has up to 309 digits)
COMPILED_CACHE_SIZE = 512

#: Jinja's built-in filters a template may use (``random`` is left out on purpose:
#: emails must render the same way twice).
BUILTIN_FILTERS = (
    "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort",
    "e", "escape", "filesizeformat", "first", "float", "forceescape", "format", "groupby",
    "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "max",
    "min", "pprint", "reject", "rejectattr", "replace", "reverse", "round", "safe",
    "select", "selectattr", "slice", "sort", "string", "striptags", "sum", "title",
    "tojson", "trim", "truncate", "unique", "upper", "urlencode", "urlize", "wordcount",
    "wordwrap", "xmlattr",
)  # fmt: skip
#: Filters docmail adds; they format for the locale of the render.
DOCMAIL_FILTERS = ("money", "date", "number")
ALLOWED_FILTERS = frozenset(BUILTIN_FILTERS + DOCMAIL_FILTERS)


# --------------------------------------------------------------------------- render state


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


def _current_locale() -> str:
    state = _STATE.get()
    if state is None:
        # Never fold locale-dependent filters at compile time (see pass_context below).
        raise TemplateError("formatting filters can only run while rendering")
    return state.locale


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
    while stack and total <= limit:
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
    size = weight(value, limit)
    if size > limit:
        raise too_big(what, size, limit)
    return value


def check_sizes(values: Iterable[Any], limit: int, what: str) -> None:
    for value in values:
        check_size(value, limit, what)


# --------------------------------------------------------------------------- undefined


class LenientUndefined(ChainableUndefined):
    """Missing attributes are empty and chainable; a missing top-level *name* fails on use."""

    __slots__ = ()

    def _is_missing_name(self) -> bool:
        return (
            self._undefined_obj is missing
            and self._undefined_hint is None
            and self._undefined_name is not None
        )

    def _fail_if_name(self) -> None:
        if self._is_missing_name():
            self._fail_with_undefined_error()

    def __str__(self) -> str:
        self._fail_if_name()
        return super().__str__()

    def __html__(self) -> str:
        self._fail_if_name()
        return super().__html__()

    def __iter__(self) -> Iterator[Any]:
        self._fail_if_name()
        return super().__iter__()

    def __bool__(self) -> bool:
        self._fail_if_name()
        return super().__bool__()

    def __len__(self) -> int:
        self._fail_if_name()
        return super().__len__()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        self._fail_if_name()
        return super().__getattr__(name)

    def __getitem__(self, name: str) -> Any:
        self._fail_if_name()
        return super().__getitem__(name)


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


def _check_width_arg(name: str, width: Any, limit: int) -> None:
    if isinstance(width, int) and width > limit:
        raise too_big(f"{name}() with {width:,}", width, limit)


def _replace_size(text: str | bytes, old: Any, new: Any, count: Any) -> int:
    if not isinstance(old, str | bytes) or not isinstance(new, str | bytes):
        return len(text)
    hits = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(len(new) - len(old), 0)


def _join_size(separator: str | bytes, items: Sequence[Any]) -> int:
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
    if name in ("center", "ljust", "rjust", "zfill"):
        _check_width_arg(name, _arg(args, kwargs, 0, "width"), limit)
    elif name == "to_bytes":
        _check_width_arg(name, _arg(args, kwargs, 0, "length"), limit)
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
        size = _replace_size(receiver, args[0] if args else None, _arg(args, kwargs, 1, "new"),
                             _arg(args, kwargs, 2, "count"))  # fmt: skip
        if size > limit:
            raise too_big("replace()", size, limit)
    elif name == "join" and args:
        items = list(args[0])
        size = _join_size(receiver, items)
        if size > limit:
            raise too_big("join()", size, limit)
        return (items, *args[1:])
    return args


# --------------------------------------------------------------------------- filters


def _bounded_count(name: str, value: Any) -> None:
    if isinstance(value, int) and value > MAX_RANGE:
        raise TemplateError(f"{name} may split into at most {MAX_RANGE:,} parts; got {value:,}")


def _check_filter_args(name: str, bound: inspect.BoundArguments, limit: int) -> None:
    """Pre-checks for built-in filters whose output can outgrow their input."""
    a = bound.arguments
    text = a.get("s", a.get("value"))
    if name == "center":
        _check_width_arg(name, a.get("width"), limit)
    elif name == "indent":
        width = a.get("width")
        pad = width if isinstance(width, int) else len(str(width))
        size = len(str(text)) + (str(text).count("\n") + 1) * pad
        if size > limit:
            raise too_big("indent", size, limit)
    elif name == "wordwrap":
        wrap = a.get("wrapstring") or "\n"
        size = len(str(text)) * (1 + len(wrap))
        if size > limit:
            raise too_big("wordwrap", size, limit)
    elif name == "replace":
        size = _replace_size(str(text), a.get("old"), a.get("new"), a.get("count"))
        if size > limit:
            raise too_big("replace", size, limit)
    elif name == "format":
        check_percent_format(str(text), a.get("kwargs") or a.get("args") or (), limit)
    elif name in ("batch", "slice"):
        _bounded_count(name, a.get("linecount", a.get("slices")))
    elif name == "sum" and not isinstance(a.get("start", 0), int | float):
        raise TemplateError("the sum filter only adds numbers; use join for text")


def _join_filter(original: Callable[..., Any], limit: int) -> Callable[..., Any]:
    """``join`` with its items materialised and measured before joining."""

    @wraps(original)
    def join(eval_ctx: Any, value: Iterable[Any], d: str = "", attribute: Any = None) -> Any:
        items = list(value)
        if attribute is not None:
            getter = make_attrgetter(eval_ctx.environment, attribute)
            items = [getter(item) for item in items]
        texts = [item if isinstance(item, str) else str(item) for item in items]
        size = _join_size(str(d), texts)
        if size > limit:
            raise too_big("join", size, limit)
        return original(eval_ctx, items, d)

    return join


def _guarded_filter(name: str, original: Callable[..., Any], limit: int) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @wraps(original)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        check_deadline()
        check_sizes((*args, *kwargs.values()), limit, f"the value given to the {name} filter")
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TemplateError(f"wrong arguments for the {name} filter: {exc}") from None
        bound.apply_defaults()
        _check_filter_args(name, bound, limit)
        return check_size(original(*args, **kwargs), limit, f"the {name} filter")

    return guarded


def _plain(value: Any) -> Any:
    """Lenient undefined values format as empty; a missing top-level name still fails."""
    if isinstance(value, LenientUndefined):
        str(value)
        return None
    return value


@pass_context
def _money(_context: Context, value: Any, currency: Any = None) -> str:
    currency = _plain(currency)
    return formatting.format_money(_plain(value), currency, locale=_current_locale())


@pass_context
def _date(_context: Context, value: Any, format: str = formatting.DEFAULT_DATE_STYLE) -> str:
    return formatting.format_date(_plain(value), format, locale=_current_locale())


@pass_context
def _number(_context: Context, value: Any, decimals: int | None = None) -> str:
    return formatting.format_number(_plain(value), decimals, locale=_current_locale())


@pass_context
def _loop_guard(_context: Context, iterable: Any) -> Iterator[Any]:
    """Wrapped around every ``{% for %}`` iterable: checks the deadline at each step."""
    for item in iterable:
        check_deadline()
        yield item


def build_filters(limit: int) -> dict[str, Callable[..., Any]]:
    filters: dict[str, Callable[..., Any]] = {}
    docmail: dict[str, Callable[..., Any]] = {"money": _money, "date": _date, "number": _number}
    for name in ALLOWED_FILTERS:
        original = docmail.get(name) or FILTERS[name]
        if name == "join":
            original = _join_filter(original, limit)
        filters[name] = _guarded_filter(name, original, limit)
    filters[LOOP_GUARD_FILTER] = _loop_guard
    return filters


# --------------------------------------------------------------------------- environment


class _BoundedCodeGenerator(CodeGenerator):
    """Routes ``a ~ b`` through :meth:`BoundedEnvironment.checked_join`."""

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"environment.checked_join({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _guard_loops(template: nodes.Template) -> nodes.Template:
    for loop in template.find_all(nodes.For):
        guard = nodes.Filter(loop.iter, LOOP_GUARD_FILTER, [], [], None, None)
        guard.set_lineno(loop.iter.lineno)
        if template.environment is not None:
            guard.set_environment(template.environment)
        loop.iter = guard
    return template


class QuietNamespace(Namespace):
    """``namespace()`` whose text form does not repeat its contents (they may be large)."""

    def __repr__(self) -> str:
        return "<namespace>"


def _refuse_str_format(*_args: Any, **_kwargs: Any) -> str:
    raise TemplateError(
        "str.format is not available in templates; join text with ~ or use the format filter"
    )


class BoundedEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox plus time and size limits; no loader, so no access to files."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "%", "+"})

    def __init__(self, *, autoescape: bool, max_value_bytes: int) -> None:
        super().__init__(
            autoescape=autoescape,
            undefined=LenientUndefined,
            finalize=self._finalize,
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,
        )
        self.max_value_bytes = max_value_bytes
        self.globals.pop("lipsum", None)
        self.globals["namespace"] = QuietNamespace
        # ERP data holds Decimals and dates; let |tojson write them as text.
        self.policies["json.dumps_kwargs"] = {"sort_keys": True, "default": str}
        self.filters = build_filters(max_value_bytes)
        self._compile_cached = lru_cache(maxsize=COMPILED_CACHE_SIZE)(self._compile_source)

    # -- compilation

    def compile_source(self, source: str) -> Template:
        """Compile ``source`` with guarded loops (cached by source text)."""
        return self._compile_cached(source)

    def _compile_source(self, source: str) -> Template:
        return self.from_string(_guard_loops(self.parse(source)))

    # -- hooks called by compiled templates

    def _finalize(self, value: Any) -> Any:
        """``{{ value }}``: ``None`` is empty text; big nested data is refused before ``str()``."""
        if value is None:
            return ""
        return check_size(value, self.max_value_bytes, "printing a value")

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        check_deadline()
        check_binop(operator, left, right, self.max_value_bytes)
        result = super().call_binop(context, operator, left, right)
        return check_size(result, self.max_value_bytes, f"the {operator} operator")

    def checked_join(self, join: Callable[[Iterable[Any]], str], values: tuple[Any, ...]) -> str:
        """``a ~ b``: measured before joining; ``None`` joins as empty text."""
        values = tuple("" if v is None else v for v in values)
        size = sum(weight(v, self.max_value_bytes) for v in values)
        if size > self.max_value_bytes:
            raise too_big("joining with ~", size, self.max_value_bytes)
        return check_size(join(values), self.max_value_bytes, "joining with ~")

    def concat(self, parts: Iterable[str]) -> str:
        """Join text collected by macros and ``{% set %}`` blocks, after measuring it."""
        items = parts if isinstance(parts, list) else list(parts)
        size = sum(map(len, items))
        if size > self.max_value_bytes:
            raise too_big("a macro or {% set %} block", size, self.max_value_bytes)
        return "".join(items)

    def getattr(self, obj: Any, attribute: str) -> Any:
        check_deadline()
        # Data keys win over dict methods: document.data.items is the ERP's "items".
        if isinstance(obj, Mapping) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        check_deadline()
        return super().getitem(obj, argument)

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        raise SecurityError(
            f"access to attribute {attribute!r} of a {type(obj).__name__!r} value is not allowed"
        )

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if super().wrap_str_format(value) is None:
            return None
        return _refuse_str_format

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        check_deadline()
        check_sizes((*args, *kwargs.values()), self.max_value_bytes, "an argument of a call")
        receiver = getattr(obj, "__self__", None)
        if isinstance(obj, BuiltinMethodType | MethodType) and isinstance(
            receiver, str | bytes | int
        ):
            args = check_text_method(receiver, obj.__name__, args, kwargs, self.max_value_bytes)
        result = super().call(context, obj, *args, **kwargs)
        return check_size(result, self.max_value_bytes, "a call")


__all__ = [
    "ALLOWED_FILTERS",
    "BoundedEnvironment",
    "LenientUndefined",
    "RenderState",
    "check_deadline",
    "rendering",
]
