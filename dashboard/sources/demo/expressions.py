"""The catalog's expression templates, read as PromQL: the small part of the language they use.

The demo answers a signal by reading its ``exprs`` (and ``legacy``/``container`` fallbacks) from
the catalog, never by restating them: this module turns a template such as
``rate(kubelet_runtime_operations_total{$sel, operation_type!="exec_sync"}[$window])`` into a tree
of :class:`Select`, :class:`Binary`, :class:`LabelReplace`, :class:`Number` and :class:`Time`,
which ``source`` evaluates on the generated series. Anything outside that part (another function,
a selector without ``$sel``, ``on``/``ignoring`` modifiers) is a :class:`Unsupported` error, so a
catalog signal the demo cannot answer fails loudly instead of reading as "no data".
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from dashboard.sources.demo.promql import _parse_matchers

Matchers = tuple[tuple[str, str, str], ...]


class Unsupported(ValueError):
    """A template uses PromQL the demo does not evaluate."""


@dataclass(frozen=True)
class Select:
    """``name{$sel, matchers}``, or ``function(name{$sel, matchers}[$window])``."""

    name: str
    matchers: Matchers
    function: Literal["rate", "increase"] | None = None


@dataclass(frozen=True)
class Binary:
    """``left op right``: ``or``, arithmetic, or ``> bool`` (vectors match on all their labels)."""

    op: Literal["or", "+", "-", "*", "/", "> bool"]
    left: Expr
    right: Expr


@dataclass(frozen=True)
class LabelReplace:
    """``label_replace(expr, "label", "value", "", "")``: every series gains ``label="value"``."""

    expr: Expr
    label: str
    value: str


@dataclass(frozen=True)
class Number:
    value: float


@dataclass(frozen=True)
class Time:
    """``time()``: the evaluation time in seconds."""


Expr = Select | Binary | LabelReplace | Number | Time

_TOKEN = re.compile(
    r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")'
    r"|(?P<number>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?)"
    r"|(?P<placeholder>\$sel|\$window)"
    r"|(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r"|(?P<op>=~|!~|!=|==|>=|<=|[-+*/(){}\[\],=<>]))"
)
_RANGE_FUNCTIONS = ("rate", "increase")


@functools.lru_cache(maxsize=None)
def parse(template: str) -> Expr:
    """The tree of one catalog template; :class:`Unsupported` when it leaves the demo's PromQL."""
    return _Parser(template).parse()


class _Parser:
    def __init__(self, template: str):
        self.template = template
        self.tokens: list[tuple[str, str]] = []  # (kind, text)
        text, position = template.rstrip(), 0
        while position < len(text):
            found = _TOKEN.match(text, position)
            if not found:
                raise self._error(f"cannot read {text[position:position + 20]!r}")
            self.tokens.append((found.lastgroup or "", found.group(found.lastgroup or 0)))
            position = found.end()
        self.index = 0

    def _error(self, why: str) -> Unsupported:
        return Unsupported(f"the demo cannot evaluate {self.template!r}: {why}")

    def _peek(self) -> str | None:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else None

    def _take(self, kind: str | None = None, text: str | None = None) -> str:
        if self.index >= len(self.tokens):
            raise self._error("unexpected end")
        token_kind, token = self.tokens[self.index]
        if (kind is not None and token_kind != kind) or (text is not None and token != text):
            raise self._error(f"expected {text or kind}, found {token!r}")
        self.index += 1
        return token

    def parse(self) -> Expr:
        expr = self._or()
        if self.index != len(self.tokens):
            raise self._error(f"unexpected {self._peek()!r}")
        return expr

    def _or(self) -> Expr:
        expr = self._comparison()
        while self._peek() == "or":
            self._take()
            expr = Binary("or", expr, self._comparison())
        return expr

    def _comparison(self) -> Expr:
        expr = self._sum()
        if self._peek() in ("==", "!=", ">", "<", ">=", "<="):
            op = self._take()
            if op != ">" or self._peek() != "bool":
                raise self._error(f"only '> bool' comparisons, not {op!r}")
            self._take()
            expr = Binary("> bool", expr, self._sum())
        return expr

    def _sum(self) -> Expr:
        expr = self._product()
        while self._peek() in ("+", "-"):
            op = self._take()
            expr = Binary(op, expr, self._product())  # type: ignore[arg-type]
        return expr

    def _product(self) -> Expr:
        expr = self._atom()
        while self._peek() in ("*", "/"):
            op = self._take()
            expr = Binary(op, expr, self._atom())  # type: ignore[arg-type]
        return expr

    def _atom(self) -> Expr:
        token = self._peek()
        if token == "(":
            self._take()
            expr = self._or()
            self._take(text=")")
            return expr
        if token is not None and self.tokens[self.index][0] == "number":
            return Number(float(self._take()))
        name = self._take("name")
        if name in ("on", "ignoring", "group_left", "group_right", "by", "without", "bool"):
            raise self._error(f"{name!r} is not evaluated")
        if self._peek() == "{":
            return Select(name, self._matchers())
        self._take(text="(")
        if name == "time":
            self._take(text=")")
            return Time()
        if name in _RANGE_FUNCTIONS:
            selected = Select(self._take("name"), self._matchers(), name)  # type: ignore[arg-type]
            self._take(text="[")
            self._take("placeholder", "$window")
            self._take(text="]")
            self._take(text=")")
            return selected
        if name == "label_replace":
            expr = self._or()
            label, value, source, regex = (self._string_argument() for _ in range(4))
            self._take(text=")")
            if source or regex:
                raise self._error("label_replace only with an empty source label and regex")
            return LabelReplace(expr, label, value)
        raise self._error(f"function {name!r} is not evaluated")

    def _string_argument(self) -> str:
        self._take(text=",")
        return re.sub(r"\\(.)", r"\1", self._take("string")[1:-1])

    def _matchers(self) -> Matchers:
        """``{$sel, label op "value", ...}``: the component's selector first, then extra matchers."""
        self._take(text="{")
        self._take("placeholder", "$sel")
        parts = []
        while self._peek() == ",":
            self._take()
            parts.append(f"{self._take('name')}{self._take('op')}{self._take('string')}")
        self._take(text="}")
        return _parse_matchers(", ".join(parts))
