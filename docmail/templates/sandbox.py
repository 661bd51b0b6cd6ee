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
so one environment can serve many renders, including concurrent ones in threads. The
deadline, the size measurement and the pre-checks are in :mod:`docmail.templates.limits`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import lru_cache, wraps
from types import BuiltinMethodType, MethodType
from typing import Any

from jinja2 import ChainableUndefined, Template, Undefined, nodes, pass_context
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError
from jinja2.filters import FILTERS, make_attrgetter
from jinja2.runtime import Context
from jinja2.sandbox import MAX_RANGE, ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, missing

from docmail.errors import TemplateError
from docmail.templates import formatting
from docmail.templates.limits import (
    RenderState,
    check_binop,
    check_deadline,
    check_percent_format,
    check_size,
    check_sizes,
    check_text_method,
    check_width_arg,
    current_locale,
    join_size,
    rendering,
    replace_size,
    too_big,
    weight,
)

LOOP_GUARD_FILTER = "_docmail_loop_guard"
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


# --------------------------------------------------------------------------- filters


def _bounded_count(name: str, value: Any) -> None:
    if isinstance(value, int) and value > MAX_RANGE:
        raise TemplateError(f"{name} may split into at most {MAX_RANGE:,} parts; got {value:,}")


def _check_filter_args(name: str, bound: inspect.BoundArguments, limit: int) -> None:
    """Pre-checks for built-in filters whose output can outgrow their input."""
    a = bound.arguments
    text = a.get("s", a.get("value"))
    if name == "center":
        check_width_arg(name, a.get("width"), limit)
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
        size = replace_size(str(text), a.get("old"), a.get("new"), a.get("count"))
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
        items = [item for item in value if _in_time()]  # a generator may be very long
        if attribute is not None:
            getter = make_attrgetter(eval_ctx.environment, attribute)
            items = [getter(item) for item in items]
        texts = [item if isinstance(item, str) else str(item) for item in items]
        size = join_size(str(d), texts)
        if size > limit:
            raise too_big("join", size, limit)
        return original(eval_ctx, items, d)

    return join


def _in_time() -> bool:
    check_deadline()
    return True


def _unnamed_leading_args(original: Callable[..., Any]) -> int:
    """Arguments Jinja passes first that the signature ``inspect`` reports does not name.

    Jinja's async-aware ``list`` and ``slice`` are wrappers marked to receive the eval
    context, which they drop before calling the plain function they wrap.
    """
    outer = getattr(original, "jinja_pass_arg", None)
    inner = getattr(inspect.unwrap(original), "jinja_pass_arg", None)
    return 1 if outer is not None and inner is None else 0


def _guarded_filter(name: str, original: Callable[..., Any], limit: int) -> Callable[..., Any]:
    if name in DOCMAIL_FILTERS:
        return _guarded_own_filter(name, original, limit)
    signature = inspect.signature(original)
    skip = _unnamed_leading_args(original)

    @wraps(original)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        check_deadline()
        check_sizes((*args, *kwargs.values()), limit, f"the value given to the {name} filter")
        try:
            bound = signature.bind(*args[skip:], **kwargs)
        except TypeError as exc:
            raise TemplateError(f"wrong arguments for the {name} filter: {exc}") from None
        bound.apply_defaults()
        _check_filter_args(name, bound, limit)
        return check_size(original(*args, **kwargs), limit, f"the {name} filter")

    return guarded


def _guarded_own_filter(name: str, original: Callable[..., Any], limit: int) -> Callable[..., Any]:
    """docmail's formatting filters take no size-like arguments: only time and size checks."""

    @wraps(original)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        check_deadline()
        check_sizes((*args, *kwargs.values()), limit, f"the value given to the {name} filter")
        try:
            result = original(*args, **kwargs)
        except TypeError as exc:
            raise TemplateError(f"wrong arguments for the {name} filter: {exc}") from None
        return check_size(result, limit, f"the {name} filter")

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
    return formatting.format_money(_plain(value), currency, locale=current_locale())


@pass_context
def _date(_context: Context, value: Any, format: str = formatting.DEFAULT_DATE_STYLE) -> str:
    return formatting.format_date(_plain(value), format, locale=current_locale())


@pass_context
def _number(_context: Context, value: Any, decimals: int | None = None) -> str:
    return formatting.format_number(_plain(value), decimals, locale=current_locale())


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
