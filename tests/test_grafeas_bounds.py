"""The Grafeas client bounded in time and size, redirect-wary, redacting, and strict about what
counts as an answer (issue 9 §2-4), against hostile fake servers on 127.0.0.1."""

from __future__ import annotations

import json
import time
import zlib

import pytest

from dashboard.config import GrafeasSettings
from dashboard.sources.grafeas import GrafeasClient, GrafeasError, GrafeasSource
from tests.fakegrafeas import FakeGrafeas, RecordedRequest, Reply
from tests.test_cli_supply_chain import cli, policy_file, qa_key  # noqa: F401 - fixtures

PROJECT = "p"
RESOURCE = "https://x/y@sha256:" + "c" * 64
TOKEN = "ya29.a-bearer-token-0123456789abcdefghij"


def occurrence(number: int) -> dict:
    return {"name": f"projects/{PROJECT}/occurrences/{number}", "resourceUri": RESOURCE,
            "kind": "VULNERABILITY", "noteName": "projects/goog-vulnz/notes/CVE-2024-0001"}


def endless(per_page: int = 1, delay: float = 0.0):
    """Pages of ``per_page`` occurrences, each with a fresh next page token, forever."""

    def reply(request: RecordedRequest) -> Reply:
        page = int(request.params.get("pageToken", "0"))
        body = {"occurrences": [occurrence(page * per_page + i) for i in range(per_page)],
                "nextPageToken": str(page + 1)}
        return Reply(body=json.dumps(body).encode(), delay=delay)

    return reply


def raw(body: bytes, status: int = 200, **options):
    return lambda _: Reply(status=status, body=body, **options)


def listing(url: str, **options) -> list[dict]:
    return GrafeasClient(url, **{"timeout": 2, "retry_base_delay": 0, **options}).list_occurrences(
        PROJECT, resource_url=RESOURCE)


def gzip_bomb(inflated: int) -> bytes:
    """A gzip body of ``inflated`` spaces after a JSON opening: about 1/1000 of that size."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * 2**20
    parts = [packer.compress(b'{"occurrences": [')]
    parts += [packer.compress(block) for _ in range(inflated // len(block))]
    return b"".join(parts) + packer.flush()


# --- §3: bounded in time --------------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_a_trickling_server_ends_at_the_request_deadline():
    with FakeGrafeas(raw(json.dumps({"occurrences": []}).encode(), trickle=0.3)) as fake:
        started = time.monotonic()
        with pytest.raises(GrafeasError, match=r"did not answer within 1 s"):
            listing(fake.url, timeout=1)
    # Every byte comes well within the timeout: only a total deadline stops the request.
    assert time.monotonic() - started < 5


@pytest.mark.timeout(20)
def test_the_listing_deadline_ends_an_endless_slow_listing_and_names_itself():
    with FakeGrafeas(endless(delay=0.3)) as fake:
        with pytest.raises(GrafeasError, match=r"listing /v1/projects/p/occurrences from Grafeas at "
                           r".* did not finish within 1 s \(listing_deadline_seconds\)"):
            listing(fake.url, timeout=5, listing_deadline_seconds=1)
    assert 2 <= len(fake.requests) <= 5


# --- §3: bounded listings -------------------------------------------------------------------------


def test_endless_page_tokens_stop_at_max_pages():
    with FakeGrafeas(endless()) as fake:
        with pytest.raises(GrafeasError, match=r"still had more pages .*: stopped after 5 pages "
                                               r"\(max_pages\)"):
            listing(fake.url, max_pages=5)
    assert len(fake.requests) == 5


def test_too_many_occurrences_stop_at_max_occurrences():
    with FakeGrafeas(endless(per_page=10)) as fake:
        stream = GrafeasClient(fake.url, max_occurrences=25).iter_occurrences(PROJECT)
        received = []
        with pytest.raises(GrafeasError, match=r"more than 25 occurrences .*: stopped after 3 pages "
                                               r"\(max_occurrences\)"):
            received += stream
    assert len(received) == 20  # the page that went over the bound is not handed over


@pytest.mark.timeout(30)
@pytest.mark.parametrize(("bound", "value", "reply", "expected"), [
    ("max_pages", 4, endless(), r"stopped after 4 pages \(max_pages\)"),
    ("max_occurrences", 7, endless(per_page=3), r"more than 7 occurrences"),
    ("listing_deadline_seconds", 1, endless(delay=0.3), r"within 1 s \(listing_deadline_seconds\)"),
    ("max_body_bytes", 1000, raw(b'{"occurrences": [' + b" " * 2000 + b"]}"),
     r"larger than 1,000 bytes decoded \(max_body_bytes\)"),
])
def test_the_source_passes_every_bound_from_its_settings(bound, value, reply, expected):
    with FakeGrafeas(reply) as fake:
        source = GrafeasSource(GrafeasSettings(url=fake.url, project=PROJECT, **{bound: value}))
        with pytest.raises(GrafeasError, match=expected):
            list(source.occurrences(RESOURCE))


# --- §3: bounded in memory ------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_a_gzip_bomb_stops_at_the_body_cap():
    bomb = gzip_bomb(300 * 2**20)
    assert len(bomb) < 400_000
    with FakeGrafeas(raw(bomb, gzipped=True)) as fake:
        with pytest.raises(GrafeasError, match=r"answer to /v1/projects/p/occurrences larger than "
                                               r"67,108,864 bytes decoded \(max_body_bytes\)"):
            listing(fake.url, timeout=30)
    assert "gzip" in fake.requests[0].headers["accept-encoding"]


def test_an_answer_just_under_the_cap_is_read():
    body = json.dumps({"occurrences": [occurrence(1)]}).encode()
    with FakeGrafeas(raw(body)) as fake:
        assert len(listing(fake.url, max_body_bytes=len(body))) == 1
        with pytest.raises(GrafeasError, match="larger than"):
            listing(fake.url, max_body_bytes=len(body) - 1)


# --- §3: redirects --------------------------------------------------------------------------------


def test_a_redirect_to_another_port_is_not_followed_and_says_where_it_pointed():
    with FakeGrafeas() as elsewhere:
        target = elsewhere.url.replace("http://", "http://user:pw@") + "/v1/stolen?key=secret"
        with FakeGrafeas(raw(b"", status=302, headers={"Location": target})) as origin:
            with pytest.raises(GrafeasError) as raised:
                listing(origin.url, token=TOKEN)
    assert str(raised.value) == (f"Grafeas at {origin.url} redirected /v1/projects/p/occurrences "
                                 f"to {elsewhere.url}/v1/stolen, another scheme, host or port: "
                                 f"not followed")
    assert elsewhere.requests == []


@pytest.mark.parametrize("location", ["https://127.0.0.1:{port}/v1/x", "http://localhost:{port}/v1/x"])
def test_a_redirect_to_another_scheme_or_host_is_not_followed(location):
    with FakeGrafeas() as fake:
        fake.reply = raw(b"", status=307, headers={"Location": location.format(port=fake.url[-5:])})
        with pytest.raises(GrafeasError, match="another scheme, host or port: not followed"):
            listing(fake.url)
    assert len(fake.requests) == 1


def test_a_redirect_on_the_same_server_is_followed_a_few_times():
    page = json.dumps({"occurrences": [occurrence(1)]}).encode()

    def moved(request: RecordedRequest) -> Reply:
        if request.path == "/v1/moved":
            return Reply(body=page)
        return Reply(status=301, body=b"", headers={"Location": "/v1/moved?pageSize=1000"})

    with FakeGrafeas(moved) as fake:
        assert len(listing(fake.url, token=TOKEN)) == 1
        assert fake.requests[1].params == {"pageSize": "1000"}
        assert fake.requests[1].headers["authorization"] == f"Bearer {TOKEN}"
        fake.reply = raw(b"", status=302, headers={"Location": "/v1/projects/p/occurrences"})
        with pytest.raises(GrafeasError, match="redirected /v1/projects/p/occurrences more than 3 "
                                               "times"):
            listing(fake.url)
    assert len(fake.requests) == 2 + 4


# --- §2: secrets and control characters in server texts -------------------------------------------


def fragments(secret: str) -> list[str]:
    return [secret[i:i + 8] for i in range(len(secret) - 7)]


@pytest.mark.parametrize("offset", [180, 190, 195, 199])
def test_a_token_straddling_the_cut_is_redacted_before_it(offset):
    message = "x" * offset + f"Bearer {TOKEN}"
    body = json.dumps({"error": {"code": 403, "status": "PERMISSION_DENIED", "message": message}})
    with FakeGrafeas(raw(body.encode(), status=403)) as fake:
        with pytest.raises(GrafeasError) as raised:
            listing(fake.url, token=TOKEN)
    text = str(raised.value)
    assert "answered 403 PERMISSION_DENIED" in text
    assert not [fragment for fragment in fragments(TOKEN) if fragment in text], text


def test_userinfo_and_token_echoed_in_plain_text_and_in_a_redirect_are_redacted():
    password = "hunter2-password-long"
    with FakeGrafeas() as fake:
        url = fake.url.replace("http://", f"http://ci:{password}@")
        fake.reply = raw(f"proxy saw {url} and Bearer {TOKEN[3:30]}".encode(), status=502,
                         headers={"Content-Type": "text/plain"})
        with pytest.raises(GrafeasError) as plain:
            listing(url, token=TOKEN)
        fake.reply = raw(b"", status=302, headers={"Location": f"http://elsewhere/{TOKEN[5:]}/x"})
        with pytest.raises(GrafeasError) as redirect:
            listing(url, token=TOKEN)
    for text in (str(plain.value), str(redirect.value)):
        assert "[redacted]" in text
        assert not [f for f in fragments(TOKEN) + fragments(password) if f in text], text


def test_control_characters_from_the_server_are_made_visible():
    body = json.dumps({"error": {"code": 500, "status": "INTERNAL",
                                 "message": "oops\x1b[2K\rALL HEALTHY\u202e"}})
    with FakeGrafeas(raw(body.encode(), status=500)) as fake:
        with pytest.raises(GrafeasError) as raised:
            listing(fake.url)
    text = str(raised.value)
    assert "\x1b" not in text and "\r" not in text and "\u202e" not in text
    # Whitespace (the carriage return) becomes a space: the message stays one line.
    assert "oops\\x1b[2K ALL HEALTHY\\u202e" in text


def test_a_repeated_page_token_is_redacted_and_shortened_in_the_message():
    body = json.dumps({"occurrences": [], "nextPageToken": f"{TOKEN}\x1b[2K"}).encode()
    with FakeGrafeas(raw(body)) as fake:
        with pytest.raises(GrafeasError, match="repeated page token") as raised:
            listing(fake.url, token=TOKEN)
    assert not [f for f in fragments(TOKEN) if f in str(raised.value)]
    assert "\x1b" not in str(raised.value)


# --- §4: malformed answers ------------------------------------------------------------------------

MALFORMED = [
    (b'{"occurrences": [', "invalid JSON"),
    (b'{"occurrences": ["\xff\xfe"]}', "invalid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply"),
    (b'{"occurrences": ' + b'{"a": ' * 50_000 + b"1" + b"}" * 50_001, "JSON nested too deeply"),
    (b'"occurrences"', "JSON that is not an object"),
    (b'{"occurrences": {"name": "x"}}', "'occurrences' that is not a list"),
    (b'{"occurrences": [{"name": "x"}, 5]}', "an item of 'occurrences' that is not an object"),
    (b'{"occurrences": [], "nextPageToken": 7}', "nextPageToken that is not a string"),
    # A token of the wrong type that is falsy must not pass for "no more pages".
    (b'{"occurrences": [], "nextPageToken": 0}', "nextPageToken that is not a string"),
    (b'{"occurrences": [], "nextPageToken": []}', "nextPageToken that is not a string"),
]
MALFORMED_IDS = ["cut-off", "bad-utf8", "deep-list", "deep-object", "string", "not-a-list",
                 "item-not-object", "token-number", "token-zero", "token-list"]


@pytest.mark.parametrize(("body", "expected"), MALFORMED, ids=MALFORMED_IDS)
def test_a_malformed_answer_is_a_grafeas_error(body, expected):
    with FakeGrafeas(raw(body)) as fake:
        with pytest.raises(GrafeasError, match=expected):
            listing(fake.url)


def test_a_malformed_error_body_still_gives_a_one_line_error():
    with FakeGrafeas(raw(b"[" * 100_000, status=500, headers={"Content-Type": "text/plain"})) as fake:
        with pytest.raises(GrafeasError, match="answered 500") as raised:
            listing(fake.url)
    assert len(str(raised.value)) <= 300


# --- the CLI: exit 3, one line, the denied verdict ------------------------------------------------


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("reply", "config", "expected"), [
    (raw(b"[" * 100_000 + b"]" * 100_000), "", "JSON nested too deeply"),
    (raw(b'{"occurrences": [5]}'), "", "that is not an object"),
    (raw(b'{"occurrences": [], "nextPageToken": 0}'), "", "nextPageToken that is not a string"),
    (endless(), "max_pages = 3\n", "stopped after 3 pages (max_pages)"),
    (raw(gzip_bomb(80 * 2**20), gzipped=True), "max_body_bytes = 1000000\n", "larger than 1,000,000"),
    (raw(b"", status=302, headers={"Location": "http://elsewhere.invalid/v1/x?t=1"}), "",
     "redirected /v1/projects/p/occurrences to http://elsewhere.invalid/v1/x, another"),
], ids=["deep-json", "item-not-object", "token-zero", "endless-pages", "gzip-bomb", "redirect"])
def test_the_gate_fails_closed_with_exit_3_and_one_line(tmp_path, policy_file, reply, config,
                                                        expected):
    with FakeGrafeas(reply) as fake:
        settings = tmp_path / "dashboard.toml"
        settings.write_text(f'[grafeas]\nurl = "{fake.url}"\nproject = "{PROJECT}"\n{config}')
        completed = cli("gate", "--config", str(settings), "--grafeas-url", fake.url,
                        "--project", PROJECT, "--resource", RESOURCE, "--policy", str(policy_file))
    assert completed.returncode == 3, completed.stdout + completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert "Traceback" not in completed.stderr
    assert completed.stdout.startswith("DENIED: " + RESOURCE)
