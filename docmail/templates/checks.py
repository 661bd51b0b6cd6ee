"""Static checks of a template, so mistakes surface when it is saved, not when it is sent.

A check reports every problem it finds, each with the template line: syntax
errors, unknown variables, unknown attributes of the known objects (``document``,
``party``...; anything under ``document.data`` is free), unknown filters and tests,
and ``{% include %}``/``{% extends %}``/``{% import %}``, which company templates
may not use (they have no access to files).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from jinja2 import Environment, TemplateSyntaxError, meta, nodes

from docmail.templates.limits import MAX_BLOCK_NESTING, MAX_BRACKET_NESTING
from docmail.templates.sandbox import ALLOWED_FILTERS, BoundedEnvironment


@dataclass(frozen=True)
class ListOf:
    """A list whose items all follow ``item``."""

    item: Schema


#: The shape of a context value: a dict of known keys, a list, or ``None`` for "anything".
Schema: TypeAlias = "dict[str, Schema] | ListOf | None"

_Found: TypeAlias = tuple[int | None, str]
_JINJA_LOCALS = frozenset({"loop", "caller", "varargs", "kwargs", "self", "super"})
_INCLUDES = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)


@dataclass(frozen=True)
class Problem:
    field: str
    line: int | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "line": self.line, "message": self.message}


def find_problems(
    env: BoundedEnvironment, field: str, source: str, schema: Mapping[str, Schema]
) -> list[Problem]:
    """Every problem of one template part, in line order."""
    found: list[_Found] = list(_line_breaks(source)) if field == "subject" else []
    too_deep = _nesting_problem(env, source)
    if too_deep is not None:
        found.append(too_deep)
    else:
        try:
            found.extend(_parsed_problems(env, source, schema, clean=not found))
        except (RecursionError, MemoryError, OverflowError, SyntaxError):
            # Long chains (1 + 1 + ... or a.b.c...) nest in the tree without brackets.
            found.append((_busiest_line(env, source), _TOO_COMPLEX))
    found.sort(key=lambda item: item[0] or 0)
    return [Problem(field, line, message) for line, message in found]


def _parsed_problems(
    env: BoundedEnvironment, source: str, schema: Mapping[str, Schema], clean: bool
) -> list[_Found]:
    try:
        ast = env.parse(source)
    except TemplateSyntaxError as exc:
        return [(exc.lineno, f"syntax error: {exc.message}")]
    found = list(_static_problems(env, ast, schema))
    if clean and not found:
        found.extend(_compile_problems(env, source))
    return found


_TOO_COMPLEX = (
    "this expression is too long or nested too deeply to compile; split it with {% set %}"
)
_OPENERS = frozenset("([{")
_CLOSERS = frozenset(")]}")
_BLOCKS = frozenset({"if", "for", "macro", "call", "filter", "with", "autoescape", "block", "set"})


def _nesting_problem(env: BoundedEnvironment, source: str) -> _Found | None:
    """The first line where brackets or blocks nest deeper than Python can compile."""
    brackets = blocks = 0
    tag: list[str] | None = None  # names and operators of the {% ... %} being read
    try:
        for line, kind, value in env.lex(source):
            if kind == "operator" and value in _OPENERS:
                brackets += 1
            elif kind == "operator" and value in _CLOSERS:
                brackets -= 1
            elif kind == "block_begin":
                tag = []
            elif kind == "block_end" and tag is not None:
                blocks, tag = blocks + _block_step(tag), None
            if tag is not None and kind in ("name", "operator"):
                tag.append(value)
            if brackets > MAX_BRACKET_NESTING or blocks > MAX_BLOCK_NESTING:
                return line, (
                    f"brackets may be nested at most {MAX_BRACKET_NESTING} deep and blocks "
                    f"at most {MAX_BLOCK_NESTING}; split the expression with {{% set %}} "
                    "or flatten the blocks"
                )
    except TemplateSyntaxError:
        return None  # reported with its line by the parser
    return None


def _block_step(tag: list[str]) -> int:
    """+1 for a tag that opens a block, -1 for one that closes it."""
    if not tag:
        return 0
    if tag[0].startswith("end"):
        return -1
    if tag[0] == "set":
        return 0 if "=" in tag else 1  # {% set x %}...{% endset %} is a block
    return 1 if tag[0] in _BLOCKS else 0


def _busiest_line(env: BoundedEnvironment, source: str) -> int | None:
    """The line where the template's longest {{ }} or {% %} begins."""
    best: tuple[int, int | None] = (0, None)
    count, start = 0, None
    try:
        for line, kind, _value in env.lex(source):
            if kind in ("variable_begin", "block_begin"):
                count, start = 0, line
            count += 1
            best = max(best, (count, start), key=lambda item: item[0])
    except TemplateSyntaxError:
        pass
    return best[1]


def _static_problems(
    env: Environment, ast: nodes.Template, schema: Mapping[str, Schema]
) -> Iterator[_Found]:
    yield from _includes(ast)
    yield from _internals(ast)
    yield from _unknown_names(env, ast, schema)
    yield from _AttributeChecker(schema, _assigned_names(ast)).run(ast)
    yield from _unknown_filters_and_tests(env, ast)


def _line_breaks(source: str) -> Iterator[_Found]:
    for index, char in enumerate(source):
        if char in "\r\n":
            line = source.count("\n", 0, index) + 1
            yield line, "the subject must be a single line; remove the line break"
            return


def _includes(ast: nodes.Template) -> Iterator[_Found]:
    for node in ast.find_all(_INCLUDES):
        yield (
            node.lineno,
            "templates cannot include, import or extend other templates; "
            "write the content into this template instead",
        )


def _assigned_names(ast: nodes.Template) -> set[str]:
    return {name.name for name in ast.find_all(nodes.Name) if name.ctx in ("store", "param")}


def _suggestion(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, sorted(candidates), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


# Jinja's own helpers reach Python internals through their attributes; templates for
# emails never need them, so naming them is refused at save time, not only at render.
_FORBIDDEN_NAMES = frozenset({"self", "cycler", "joiner", "lipsum"})


def _internals(ast: nodes.Template) -> Iterator[_Found]:
    """Refuse private attributes (``x.__class__``, ``x['_y']``) and Jinja's helper objects."""
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Name)):
        if isinstance(node, nodes.Name):
            name = node.name if node.ctx == "load" and node.name in _FORBIDDEN_NAMES else None
        elif isinstance(node, nodes.Getattr):
            name = node.attr if node.attr.startswith("_") else None
        else:
            arg = getattr(node, "arg", None)
            key = arg.value if isinstance(arg, nodes.Const) else None
            name = key if isinstance(key, str) and key.startswith("_") else None
        if name is not None:
            yield node.lineno, f"'{name}' is not available in templates (sandbox)"


def _unknown_names(
    env: Environment, ast: nodes.Template, schema: Mapping[str, Schema]
) -> Iterator[_Found]:
    allowed = set(schema) | set(env.globals) | _assigned_names(ast)
    unknown = _undeclared_names(ast) - allowed
    for node in ast.find_all(nodes.Name):
        if node.name in unknown and node.ctx == "load":
            unknown.discard(node.name)
            yield (
                node.lineno,
                f"unknown variable '{node.name}'{_suggestion(node.name, schema)}, "
                f"use one of: {', '.join(schema)}",
            )


def _undeclared_names(ast: nodes.Template) -> set[str]:
    try:
        return meta.find_undeclared_variables(ast)
    except TemplateSyntaxError:
        # Jinja stops at an unknown filter or test (reported on their own); fall back to
        # every name read, less the ones Jinja provides inside loops, macros and blocks.
        names = {n.name for n in ast.find_all(nodes.Name) if n.ctx == "load"}
        return names - _JINJA_LOCALS


def _unknown_filters_and_tests(env: Environment, ast: nodes.Template) -> Iterator[_Found]:
    for node in ast.find_all(nodes.Filter):
        if node.name not in ALLOWED_FILTERS:
            yield (
                node.lineno,
                f"unknown filter '{node.name}'{_suggestion(node.name, ALLOWED_FILTERS)}, "
                "use money, date, number or one of Jinja's built-in filters",
            )
    for test in ast.find_all(nodes.Test):
        if test.name not in env.tests:
            yield test.lineno, f"unknown test '{test.name}'{_suggestion(test.name, env.tests)}"


def _compile_problems(env: BoundedEnvironment, source: str) -> Iterator[_Found]:
    try:
        env.compile_source(source)
    except TemplateSyntaxError as exc:
        yield exc.lineno, exc.message or str(exc)


class _AttributeChecker:
    """Follows ``document.x``, ``documents[0].x`` and loop variables over known lists."""

    def __init__(self, schema: Mapping[str, Schema], assigned: set[str]) -> None:
        # A name the template assigns itself ({% set document = ... %}) is not checked.
        self._root = {name: shape for name, shape in schema.items() if name not in assigned}
        self._found: list[_Found] = []

    def run(self, ast: nodes.Template) -> list[_Found]:
        self._visit(ast, self._root)
        return self._found

    def _visit(self, node: nodes.Node, scope: dict[str, Schema]) -> None:
        if isinstance(node, nodes.For):
            self._visit_for(node, scope)
            return
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            self._check(node, scope)
        for child in node.iter_child_nodes():
            self._visit(child, scope)

    def _visit_for(self, node: nodes.For, scope: dict[str, Schema]) -> None:
        self._visit(node.iter, scope)
        inner = dict(scope)
        for target in node.target.find_all(nodes.Name):
            inner.pop(target.name, None)
        iterated = self._shape(node.iter, scope)
        if isinstance(iterated, ListOf) and isinstance(node.target, nodes.Name):
            inner[node.target.name] = iterated.item
        for child in (*node.body, *([node.test] if node.test else [])):
            self._visit(child, inner)
        for child in node.else_:
            self._visit(child, scope)

    def _check(self, node: nodes.Getattr | nodes.Getitem, scope: dict[str, Schema]) -> None:
        parent = self._shape(node.node, scope)
        key = _key_of(node)
        if isinstance(parent, dict) and key is not None and key not in parent:
            where = _describe(node.node)
            self._found.append(
                (
                    node.lineno,
                    f"'{where}' has no attribute '{key}'{_suggestion(key, parent)}, "
                    f"use one of: {', '.join(parent)}",
                )
            )

    def _shape(self, node: nodes.Node, scope: dict[str, Schema]) -> Schema:
        if isinstance(node, nodes.Name):
            return scope.get(node.name)
        if not isinstance(node, nodes.Getattr | nodes.Getitem):
            return None
        parent = self._shape(node.node, scope)
        if isinstance(parent, ListOf):
            index = node.arg if isinstance(node, nodes.Getitem) else None
            is_index = isinstance(index, nodes.Const) and isinstance(index.value, int)
            return parent.item if is_index else None
        key = _key_of(node)
        if isinstance(parent, dict) and key is not None:
            return parent.get(key)
        return None


def _key_of(node: nodes.Getattr | nodes.Getitem) -> str | None:
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    return None


def _describe(node: nodes.Node) -> str:
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_describe(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        return f"{_describe(node.node)}[{node.arg.value!r}]"
    return "value"
