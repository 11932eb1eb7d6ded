"""Validation of operator-written PromQL label-matcher lists such as ``job="kubelet", metrics_path="/metrics"``.

Selectors from the configuration are pasted into PromQL inside ``{…}``; one that does not parse as a
matcher list (a stray ``}``, an unterminated string) could turn a cluster filter into a query over
every cluster, so it is refused with a message naming the problem.
"""

from __future__ import annotations

import re

_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_OPERATOR = re.compile(r"=~|!~|!=|=")
_ESCAPE = r"""\\(?:[abfnrtv\\'"]|[0-7]{3}|x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})"""
_STRING = re.compile(
    rf'"(?:[^"\\\n]|{_ESCAPE})*"'
    rf"|'(?:[^'\\\n]|{_ESCAPE})*'"
    r"|`[^`]*`"
)
_SPACE = re.compile(r"\s*")


def is_label_name(text: str) -> bool:
    """Whether ``text`` is a Prometheus label name (``[a-zA-Z_][a-zA-Z0-9_]*``, nothing around it)."""
    return _LABEL_NAME.fullmatch(text) is not None


def validate_matchers(text: str) -> str:
    """``text`` stripped, after checking it parses as a comma-separated label-matcher list.

    Raises :class:`ValueError` naming the problem and where it is. An empty list is valid.
    """
    position = _skip(text, 0)
    while position < len(text):
        name = _LABEL_NAME.match(text, position)
        if name is None:
            raise ValueError(f"matchers {text!r}: expected a label name at {_where(text, position)}")
        position = _skip(text, name.end())
        operator = _OPERATOR.match(text, position)
        if operator is None:
            raise ValueError(
                f"matchers {text!r}: expected =, !=, =~ or !~ after {name.group()} at {_where(text, position)}"
            )
        position = _skip(text, operator.end())
        value = _STRING.match(text, position)
        if value is None:
            raise ValueError(
                f"matchers {text!r}: expected a quoted string after {name.group()}{operator.group()} "
                f"at {_where(text, position)} (unterminated, or an invalid escape)"
            )
        position = _skip(text, value.end())
        if position == len(text):
            break
        if text[position] != ",":
            raise ValueError(f"matchers {text!r}: expected a comma at {_where(text, position)}")
        position = _skip(text, position + 1)
    return text.strip()


def _skip(text: str, position: int) -> int:
    return _SPACE.match(text, position).end()


def _where(text: str, position: int) -> str:
    if position >= len(text):
        return "the end"
    return f"character {position + 1} ({text[position]!r})"
