"""Text safe to show: configured secrets cut out, control characters made visible.

Every text that came from a server (an error body, a Prometheus warning, a label value) passes through
:func:`redact` before it is truncated or printed, so a proxy that echoes the request's credentials
cannot put them on an output, not even in part: any run of 8 or more consecutive characters of a
secret is replaced.  :func:`printable` then makes control characters visible, so a label value such as
``"\\x1b[2K\\rALL HEALTHY"`` cannot rewrite a line on a terminal.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable, Mapping
from urllib.parse import unquote, urlsplit

REDACTED = "[redacted]"
FRAGMENT = 8
"""Shorter secrets are redacted only whole; longer ones also by any fragment of this many characters."""


def secret_forms(
    bearer_token: str | None = None,
    basic_auth: tuple[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    url: str | None = None,
) -> list[str]:
    """The strings to redact for one source's credentials, each once, in the order given.

    The bearer token; the basic-auth password and ``base64(user:password)`` (what travels in the
    header); every header value; a URL's user-info, as written and percent-decoded.
    """
    forms: list[str] = []
    if bearer_token:
        forms.append(bearer_token)
    if basic_auth:
        user, password = basic_auth
        forms.append(password)
        forms.append(base64.b64encode(f"{user}:{password}".encode()).decode("ascii"))
    for value in (headers or {}).values():
        forms.append(value)
    if url:
        userinfo = _userinfo(url)
        if userinfo:
            user, _, password = userinfo.partition(":")
            forms.extend((userinfo, unquote(userinfo), password, unquote(password)))
            forms.append(base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode("ascii"))
    return list(dict.fromkeys(form for form in forms if form))


def _userinfo(url: str) -> str:
    try:
        netloc = urlsplit(url.strip()).netloc
    except ValueError:
        # urlsplit refuses a bad bracket; the user-info is still everything before the last "@".
        netloc = url.partition("://")[2].partition("/")[0]
    return netloc.rpartition("@")[0]


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret, and every fragment of 8+ characters of one, replaced by ``[redacted]``.

    Secrets shorter than 8 characters are replaced only whole. A covered run (overlapping or adjacent
    fragments) becomes one ``[redacted]``.
    """
    grams: set[str] = set()
    short: set[str] = set()
    for secret in secrets:
        if len(secret) >= FRAGMENT:
            grams.update(secret[i:i + FRAGMENT] for i in range(len(secret) - FRAGMENT + 1))
        elif secret:
            short.add(secret)
    spans = [(i, i + FRAGMENT) for i in _gram_starts(text, grams)]
    if short:
        # Overlapping occurrences too (a lookahead tries every position); longest first where two start together.
        alternatives = "|".join(re.escape(s) for s in sorted(short, key=lambda s: (-len(s), s)))
        spans.extend((m.start(), m.start() + len(m.group(1)))
                     for m in re.finditer(f"(?=({alternatives}))", text, re.DOTALL))
        spans.sort()
    if not spans:
        return text
    pieces: list[str] = []
    position = 0
    run_start = run_end = spans[0][0]
    for start, end in spans:
        if start > run_end:
            pieces += (text[position:run_start], REDACTED)
            position, run_start = run_end, start
        run_end = max(run_end, end)
    pieces += (text[position:run_start], REDACTED, text[run_end:])
    return "".join(pieces)


def _gram_starts(text: str, grams: set[str]) -> list[int]:
    """Where an 8-gram of a secret starts in ``text``, in order.

    A fragment of 8+ characters is a union of the secret's 8-grams, so covering every occurrence of
    every 8-gram covers every fragment. One set look-up per position keeps this linear in the text
    whatever the secrets' number and length (about 0.2 s for 2 MB); a regex alternation of the grams
    took seconds for one 800-character header value.
    """
    if not grams:
        return []
    return [i for i in range(len(text) - FRAGMENT + 1) if text[i:i + FRAGMENT] in grams]


def _escape(code: int) -> str:
    return {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}.get(code, f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


_CONTROLS = [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0),
             # Bidirectional overrides and isolates reorder what a terminal or browser shows.
             *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_VISIBLE = str.maketrans({code: _escape(code) for code in _CONTROLS})


def printable(text: str) -> str:
    """``text`` with control characters (C0, DEL, C1, bidi overrides) written as escapes such as ``\\x1b``."""
    return text.translate(_VISIBLE)
