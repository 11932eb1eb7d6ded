"""Redaction of configured secrets, whole or in part, and control characters made visible."""

from __future__ import annotations

import base64

from dashboard.redaction import REDACTED, printable, redact, secret_forms

TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXBheWxvYWQ.sig-0123456789"


def test_whole_secret_is_replaced_everywhere():
    text = f"401 Unauthorized: got 'Bearer {TOKEN}'; retry with {TOKEN}"
    assert redact(text, [TOKEN]) == f"401 Unauthorized: got 'Bearer {REDACTED}'; retry with {REDACTED}"


def test_any_fragment_of_eight_characters_is_replaced():
    # What a server's 200-character cut leaves of a token that straddled it: its head, or its tail.
    head, middle, tail = TOKEN[:8], TOKEN[20:31], TOKEN[-9:]
    text = f"...{head}|{middle}|{tail}"
    assert redact(text, [TOKEN]) == f"...{REDACTED}|{REDACTED}|{REDACTED}"


def test_fragments_shorter_than_eight_characters_stay():
    text = f"prefix {TOKEN[:7]} suffix"
    assert redact(text, [TOKEN]) == text


def test_short_secret_is_replaced_only_whole():
    assert redact("pw=hunter2 hunte", ["hunter2"]) == f"pw={REDACTED} hunte"


def test_overlapping_secrets_make_one_redaction():
    first, second = "alpha-bravo-charlie", "charlie-delta-echo"
    text = "x alpha-bravo-charlie-delta-echo y"
    assert redact(text, [first, second]) == f"x {REDACTED} y"


def test_no_secrets_or_empty_secrets_leave_text_alone():
    assert redact("nothing to hide", []) == "nothing to hide"
    assert redact("nothing to hide", ["", ""]) == "nothing to hide"


def test_multiline_and_unicode_texts():
    secret = "pässwörd-ünicode-42"
    text = f"line one\n{secret[:10]}\nline three {secret}"
    assert redact(text, [secret]) == f"line one\n{REDACTED}\nline three {REDACTED}"


def test_megabytes_of_text_with_a_long_header_value():
    header = "k" * 3 + "".join(chr(0x41 + i % 26) + str(i) for i in range(400))
    filler = "0123456789abcdef\n" * 130_000
    text = filler + header[100:150] + filler + header
    redacted = redact(text, ["tok-zyxwvuts", header])
    assert redacted == filler + REDACTED + filler + REDACTED


def test_secret_forms_cover_token_password_basic_auth_headers_and_userinfo():
    forms = secret_forms(
        bearer_token="tok-abcdefgh",
        basic_auth=("viewer", "s3cret-pass"),
        headers={"X-Scope-OrgID": "tenant-key-1234"},
        url="https://ops%40corp:p%40ss-word@prom.example:9090/",
    )
    assert "tok-abcdefgh" in forms
    assert "s3cret-pass" in forms
    assert base64.b64encode(b"viewer:s3cret-pass").decode() in forms
    assert "tenant-key-1234" in forms
    assert "ops%40corp:p%40ss-word" in forms
    assert "p@ss-word" in forms
    assert base64.b64encode(b"ops@corp:p@ss-word").decode() in forms
    assert len(forms) == len(set(forms))


def test_secret_forms_of_nothing_is_empty():
    assert secret_forms() == []
    assert secret_forms(url="https://prom.example:9090/") == []


def test_basic_auth_header_echoed_by_a_proxy_is_redacted():
    forms = secret_forms(basic_auth=("viewer", "s3cret-pass"))
    echoed = "Authorization: Basic " + base64.b64encode(b"viewer:s3cret-pass").decode()
    assert redact(echoed, forms) == f"Authorization: Basic {REDACTED}"


def test_printable_makes_terminal_controls_visible():
    label = "\x1b[2K\rALL HEALTHY\n\tnext\x00\x7f\x9b\u202e"
    shown = printable(label)
    assert shown == "\\x1b[2K\\rALL HEALTHY\\n\\tnext\\x00\\x7f\\x9b\\u202e"
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in shown)


def test_printable_keeps_ordinary_text():
    text = "node-1.eu-west — kubelet ✓ ünïcode"
    assert printable(text) == text
