"""The Grafeas client against the test server: paging, filtering, retries, errors and auth."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from dashboard.sources import grafeas
from dashboard.sources.grafeas import GrafeasClient, GrafeasError, token_from_command
from harness.grafeas_server import GrafeasTestServer, parse_filter, unused_local_url

IMAGE = "https://us-docker.pkg.dev/app-project/repo/web@sha256:" + "a" * 64
OTHER_IMAGE = "https://us-docker.pkg.dev/app-project/repo/web@sha256:" + "b" * 64
TOKEN = "ya29.test-token-that-must-never-leak"
FIXTURES = Path(__file__).parent / "fixtures" / "grafeas"


def v1_occurrence(number: int, resource: str = IMAGE, kind: str = "VULNERABILITY") -> dict:
    return {"name": f"projects/app-project/occurrences/{number}", "resourceUri": resource,
            "noteName": f"projects/goog-vulnz/notes/CVE-2024-{number:04d}", "kind": kind}


def v1beta1_occurrence(number: int, resource: str = IMAGE, kind: str = "VULNERABILITY") -> dict:
    return {"name": f"projects/app-project/occurrences/{number}",
            "resource": {"name": "", "uri": resource, "contentHash": None},
            "noteName": f"projects/goog-vulnz/notes/CVE-2024-{number:04d}", "kind": kind}


def client_for(server: GrafeasTestServer, **options) -> GrafeasClient:
    options.setdefault("retry_base_delay", 0.0)
    return GrafeasClient(server.url, **options)


def names(occurrences: list[dict]) -> list[str]:
    return [occurrence["name"] for occurrence in occurrences]


def test_pages_until_the_token_is_empty_when_the_server_gives_short_pages():
    data = [v1_occurrence(number) for number in range(10)]
    with GrafeasTestServer({"app-project": data}, max_page_size=3) as server:
        found = client_for(server).list_occurrences("app-project")
    assert names(found) == names(data)
    assert len(server.requests) == 4
    assert {request.params["pageSize"] for request in server.requests} == {"1000"}
    assert "pageToken" not in server.requests[0].params


def test_empty_pages_in_the_middle_and_a_final_empty_object_page():
    data = [v1_occurrence(number) for number in range(5)]
    with GrafeasTestServer({"app-project": data}, max_page_size=2, empty_pages=True,
                           trailing_empty_page=True) as server:
        raw_pages = []
        token = ""
        while True:
            params = {"pageToken": token} if token else {}
            raw_pages.append(requests.get(f"{server.url}/v1/projects/app-project/occurrences",
                                          params=params, timeout=5).json())
            token = raw_pages[-1].get("nextPageToken", "")
            if not token:
                break
        found = client_for(server).list_occurrences("app-project")
    assert [list(page) for page in raw_pages] == [
        ["occurrences", "nextPageToken"], ["nextPageToken"],
        ["occurrences", "nextPageToken"], ["nextPageToken"],
        ["occurrences", "nextPageToken"], []]
    assert names(found) == names(data)


def test_a_project_without_occurrences_answers_an_empty_object():
    with GrafeasTestServer({"empty-project": []}) as server:
        raw = requests.get(f"{server.url}/v1/projects/empty-project/occurrences", timeout=5)
        found = client_for(server).list_occurrences("empty-project")
    assert raw.json() == {}
    assert found == []


def test_server_defaults_to_20_and_clamps_page_size_to_1000():
    data = [v1_occurrence(number) for number in range(1200)]
    with GrafeasTestServer({"app-project": data}) as server:
        url = f"{server.url}/v1/projects/app-project/occurrences"
        default_page = requests.get(url, timeout=5).json()
        clamped_page = requests.get(url, params={"pageSize": "5000"}, timeout=5).json()
    assert len(default_page["occurrences"]) == 20
    assert len(clamped_page["occurrences"]) == 1000


def test_client_asks_for_at_most_1000_per_page():
    data = [v1_occurrence(number) for number in range(2500)]
    with GrafeasTestServer({"app-project": data}) as server:
        found = client_for(server, page_size=5000).list_occurrences("app-project")
    assert len(found) == 2500
    assert [request.params["pageSize"] for request in server.requests] == ["1000"] * 3


def test_pages_through_20000_occurrences():
    data = [v1_occurrence(number) for number in range(20_000)]
    with GrafeasTestServer({"app-project": data}) as server:
        found = client_for(server).list_occurrences("app-project", resource_url=IMAGE)
    assert len(found) == 20_000
    assert len(server.requests) == 20


def test_v1_filter_is_sent_and_honoured_by_the_server():
    data = [v1_occurrence(1), v1_occurrence(2, OTHER_IMAGE), v1_occurrence(3, kind="BUILD")]
    with GrafeasTestServer({"app-project": data}) as server:
        found = client_for(server).list_occurrences("app-project", resource_url=IMAGE,
                                                    kind="vulnerability")
        sent_filter = server.requests[0].params["filter"]
        raw = requests.get(f"{server.url}/v1/projects/app-project/occurrences",
                           params={"filter": sent_filter}, timeout=5).json()
    assert sent_filter == f'resourceUrl="{IMAGE}" AND kind="VULNERABILITY"'
    assert names(raw["occurrences"]) == ["projects/app-project/occurrences/1"]
    assert names(found) == ["projects/app-project/occurrences/1"]


def test_v1beta1_server_ignores_filter_but_client_returns_only_the_asked_resource():
    data = [v1beta1_occurrence(1), v1beta1_occurrence(2, OTHER_IMAGE),
            v1beta1_occurrence(3, kind="ATTESTATION"),
            v1beta1_occurrence(4, OTHER_IMAGE, kind="ATTESTATION")]
    with GrafeasTestServer({"app-project": data}) as server:
        client = client_for(server, api="v1beta1")
        everything_for_image = client.list_occurrences("app-project", resource_url=IMAGE)
        attestations = client.list_occurrences("app-project", resource_url=IMAGE,
                                               kind="ATTESTATION")
        raw = requests.get(f"{server.url}/v1beta1/projects/app-project/occurrences",
                           params={"filter": server.requests[0].params["filter"]},
                           timeout=5).json()
    assert {request.path for request in server.requests[:2]} == {
        "/v1beta1/projects/app-project/occurrences"}
    assert len(raw["occurrences"]) == 4
    assert names(everything_for_image) == ["projects/app-project/occurrences/1",
                                           "projects/app-project/occurrences/3"]
    assert names(attestations) == ["projects/app-project/occurrences/3"]


def test_filter_values_with_quote_and_backslash_are_escaped():
    awkward = 'https://registry.example/app@sha256:"quoted"\\back'
    data = [v1_occurrence(1, awkward), v1_occurrence(2)]
    with GrafeasTestServer({"app-project": data}) as server:
        found = client_for(server).list_occurrences("app-project", resource_url=awkward)
    sent_filter = server.requests[0].params["filter"]
    assert sent_filter == 'resourceUrl="https://registry.example/app@sha256:\\"quoted\\"\\\\back"'
    assert parse_filter(sent_filter) == [("resourceUrl", awkward)]
    assert names(found) == ["projects/app-project/occurrences/1"]


def test_notes_in_both_dialects():
    notes = json.loads((FIXTURES / "v1beta1-oss-server-list-notes.json").read_text())
    with GrafeasTestServer(notes={"grafeasclienttest": notes["notes"]}, max_page_size=2) as server:
        for api in ("v1", "v1beta1"):
            found = client_for(server, api=api).list_notes("projects/grafeasclienttest")
            assert [note["name"] for note in found] == [note["name"] for note in notes["notes"]]
    assert server.requests[-1].path == "/v1beta1/projects/grafeasclienttest/notes"


def test_occurrences_of_a_resource_across_projects():
    app = [v1_occurrence(1), v1_occurrence(2, OTHER_IMAGE)]
    attestor = [v1_occurrence(10, kind="ATTESTATION"),
                v1_occurrence(11, OTHER_IMAGE, kind="ATTESTATION")]
    with GrafeasTestServer({"app-project": app, "attestor-project": attestor}) as server:
        found = list(client_for(server).occurrences_for_resource(
            IMAGE, ["app-project", "attestor-project", "app-project"]))
    assert names(found) == ["projects/app-project/occurrences/1",
                            "projects/app-project/occurrences/10"]
    assert len(server.requests) == 2


def test_occurrences_of_a_note():
    attestor = [v1_occurrence(10, kind="ATTESTATION"),
                v1_occurrence(11, OTHER_IMAGE, kind="ATTESTATION")]
    for occurrence in attestor:
        occurrence["noteName"] = "projects/attestor-project/notes/qa"
    with GrafeasTestServer({"attestor-project": attestor}) as server:
        found = client_for(server).list_note_occurrences("projects/attestor-project/notes/qa",
                                                         resource_url=IMAGE)
    assert server.requests[0].path == "/v1/projects/attestor-project/notes/qa/occurrences"
    assert names(found) == ["projects/app-project/occurrences/10"]


def wait_for_requests(server: GrafeasTestServer, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(server.requests) < count and time.monotonic() < deadline:
        time.sleep(0.01)


# With the caller holding page 1: pages 2 and 3 wait for it, page 4 waits for room.
READ_AHEAD_REQUESTS = 2 + grafeas._PAGES_AHEAD


def test_pages_are_requested_ahead_while_the_caller_works_but_only_a_few():
    data = [v1_occurrence(number) for number in range(10)]
    with GrafeasTestServer({"app-project": data}, max_page_size=1) as server:
        stream = client_for(server).iter_occurrences("app-project")
        first = next(stream)
        wait_for_requests(server, READ_AHEAD_REQUESTS)
        time.sleep(0.2)  # room for a request too many to show up
        assert len(server.requests) == READ_AHEAD_REQUESTS
        assert names([first, *stream]) == names(data)
    assert len(server.requests) == 10


def test_an_error_on_a_later_page_ends_the_stream_with_that_error():
    data = [v1_occurrence(number) for number in range(10)]
    with GrafeasTestServer({"app-project": data}, max_page_size=1) as server:
        stream = client_for(server).iter_occurrences("app-project")
        received = [next(stream)]
        wait_for_requests(server, READ_AHEAD_REQUESTS)
        server.fail_next([500])  # the next request is for page 5
        with pytest.raises(GrafeasError, match="answered 500"):
            received += stream
    assert names(received) == names(data[:READ_AHEAD_REQUESTS])


def test_a_caller_that_stops_early_stops_the_paging():
    data = [v1_occurrence(number) for number in range(10)]
    with GrafeasTestServer({"app-project": data}, max_page_size=1) as server:
        stream = client_for(server).iter_occurrences("app-project")
        next(stream)
        wait_for_requests(server, READ_AHEAD_REQUESTS)
        stream.close()
        time.sleep(0.2)
        assert len(server.requests) == READ_AHEAD_REQUESTS
        assert not [thread for thread in threading.enumerate() if thread.name == "grafeas-pages"]


def test_repeated_page_token_is_an_error_not_an_endless_loop():
    with GrafeasTestServer({"app-project": [v1_occurrence(1)]}, repeat_page_token=True) as server:
        with pytest.raises(GrafeasError, match="repeated page token"):
            client_for(server).list_occurrences("app-project")
    assert len(server.requests) == 2


def test_total_pages_are_bounded():
    data = [v1_occurrence(number) for number in range(10)]
    with GrafeasTestServer({"app-project": data}, max_page_size=1) as server:
        with pytest.raises(GrafeasError, match="after 3 pages"):
            client_for(server, max_pages=3).list_occurrences("app-project")
    assert len(server.requests) == 3


def test_500_is_an_error_and_not_retried():
    with GrafeasTestServer({"app-project": []}, always_fail=500) as server:
        with pytest.raises(GrafeasError) as raised:
            client_for(server).list_occurrences("app-project")
    assert str(raised.value) == f"Grafeas at {server.url} answered 500 INTERNAL: injected failure"
    assert len(server.requests) == 1


def test_404_for_an_unknown_project_carries_the_grafeas_message():
    with GrafeasTestServer({"app-project": []}) as server:
        with pytest.raises(GrafeasError, match="answered 404 NOT_FOUND: project projects/nope"):
            client_for(server).list_occurrences("nope")


def test_grpc_gateway_error_bodies_are_understood():
    body = json.dumps({"code": 5, "message": "note not found", "details": []}).encode()
    with GrafeasTestServer({"app-project": []}, raw_response=(404, body)) as server:
        with pytest.raises(GrafeasError, match="answered 404 NOT_FOUND: note not found"):
            client_for(server).list_occurrences("app-project")


def test_503_then_success_is_retried():
    with GrafeasTestServer({"app-project": [v1_occurrence(1)]}) as server:
        server.fail_next([503, 503])
        found = client_for(server).list_occurrences("app-project")
    assert names(found) == ["projects/app-project/occurrences/1"]
    assert len(server.requests) == 3


def test_429_honours_retry_after_but_caps_it(monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(grafeas.time, "sleep", waits.append)
    with GrafeasTestServer({"app-project": [v1_occurrence(1)]}) as server:
        client = client_for(server, max_retry_delay=5.0)
        server.fail_next([429], retry_after="2")
        client.list_occurrences("app-project")
        server.fail_next([429], retry_after="3600")
        client.list_occurrences("app-project")
    assert waits == [2.0, 5.0]


def test_backoff_doubles_and_gives_up_after_max_retries(monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(grafeas.time, "sleep", waits.append)
    with GrafeasTestServer({"app-project": []}, always_fail=503) as server:
        with pytest.raises(GrafeasError, match="answered 503 UNAVAILABLE"):
            client_for(server, max_retries=3, retry_base_delay=0.01).list_occurrences(
                "app-project")
    assert waits == [0.01, 0.02, 0.04]
    assert len(server.requests) == 4


@pytest.mark.timeout(20)
def test_timeout_is_an_error_and_not_retried():
    with GrafeasTestServer({"app-project": []}, delay=30) as server:
        with pytest.raises(GrafeasError, match=r"did not answer within 0\.3 s"):
            client_for(server, timeout=0.3).list_occurrences("app-project")
    assert len(server.requests) == 1


@pytest.mark.timeout(20)
def test_an_answer_that_stalls_halfway_times_out():
    with GrafeasTestServer({"app-project": [v1_occurrence(1)]}, body_fault="stall") as server:
        with pytest.raises(GrafeasError, match=r"did not answer within 0\.3 s"):
            client_for(server, timeout=0.3).list_occurrences("app-project")


def test_an_answer_cut_short_is_an_error():
    with GrafeasTestServer({"app-project": [v1_occurrence(1)]}, body_fault="close") as server:
        with pytest.raises(GrafeasError,
                           match="closed the connection before the answer was complete"):
            client_for(server).list_occurrences("app-project")


def test_compressed_answers_are_decoded_and_the_connection_is_kept():
    data = [v1_occurrence(number) for number in range(5)]
    with GrafeasTestServer({"app-project": data}, max_page_size=2, gzip=True) as server:
        assert names(client_for(server).list_occurrences("app-project")) == names(data)
    assert all("gzip" in request.headers["accept-encoding"] for request in server.requests)
    assert len({request.client_port for request in server.requests}) == 1


@pytest.mark.parametrize(("body", "expected"), [
    (b'{"occurrences": [', "invalid JSON"),
    (b"", "invalid JSON"),
    (b"[]", "JSON that is not an object"),
    (b'{"occurrences": {"name": "x"}}', "'occurrences' that is not a list"),
])
def test_malformed_answers_are_errors(body, expected):
    with GrafeasTestServer({"app-project": []}, raw_response=(200, body)) as server:
        with pytest.raises(GrafeasError, match=expected):
            client_for(server).list_occurrences("app-project")


def test_unreachable_server_is_an_error():
    client = GrafeasClient(unused_local_url(), timeout=2)
    with pytest.raises(GrafeasError, match="is unreachable: connection refused"):
        client.list_occurrences("app-project")


def test_token_is_sent_as_bearer_and_never_shown():
    with GrafeasTestServer({"app-project": [v1_occurrence(1)]}, required_token=TOKEN) as server:
        found = client_for(server, token=TOKEN, user_project="billing-project").list_occurrences(
            "app-project")
        with pytest.raises(GrafeasError) as without_token:
            client_for(server).list_occurrences("app-project")
        with pytest.raises(GrafeasError) as wrong_token:
            client_for(server, token="other-token").list_occurrences("app-project")
        server.raw_response = (403, f"denied for Bearer {TOKEN}".encode())
        with pytest.raises(GrafeasError) as echoed:
            client_for(server, token=TOKEN).list_occurrences("app-project")
    assert len(found) == 1
    assert server.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert server.requests[0].headers["x-goog-user-project"] == "billing-project"
    assert "authorization" not in server.requests[1].headers
    assert "answered 401 UNAUTHENTICATED" in str(without_token.value)
    assert "answered 401" in str(wrong_token.value)
    assert TOKEN not in str(echoed.value) and "[redacted]" in str(echoed.value)
    client = client_for(server, token=TOKEN)
    assert TOKEN not in repr(client) and TOKEN not in str(vars(client))


def test_bad_settings_are_refused_without_echoing_the_token():
    with pytest.raises(ValueError) as bad_token:
        GrafeasClient("http://127.0.0.1:1", token="line\nbreak-secret")
    assert "secret" not in str(bad_token.value)
    with pytest.raises(ValueError):
        GrafeasClient("http://127.0.0.1:1", api="v2")
    with pytest.raises(ValueError):
        GrafeasClient("http://127.0.0.1:1", page_size=0)
    with pytest.raises(ValueError):
        GrafeasClient("ftp://127.0.0.1:1")
    with pytest.raises(ValueError):
        GrafeasClient("http://127.0.0.1:1").list_occurrences("a/b")


def test_token_from_command():
    assert token_from_command([sys.executable, "-c", "print('  ya29.abc  ')"], timeout=20) == (
        "ya29.abc")


def test_token_command_failure_does_not_leak_its_output():
    secret = "ya29.a-token-like-secret-printed-by-mistake"
    script = f"import sys; print('{secret}'); print('ERROR: no account {secret}', " \
             f"file=sys.stderr); sys.exit(3)"
    with pytest.raises(GrafeasError) as raised:
        token_from_command([sys.executable, "-c", script], timeout=20)
    assert "exited with status 3: ERROR: no account" in str(raised.value)
    assert secret not in str(raised.value)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("argv", "timeout", "expected"), [
    (["/nonexistent/gcloud", "auth", "print-access-token"], 20, "was not found"),
    ([sys.executable, "-c", "import time; time.sleep(30)"], 0.5, "did not finish within 0.5 s"),
    ([sys.executable, "-c", "pass"], 20, "printed no token"),
])
def test_token_command_errors(argv, timeout, expected):
    with pytest.raises(GrafeasError, match=expected):
        token_from_command(argv, timeout=timeout)
