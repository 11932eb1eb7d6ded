"""The app as a user runs it, configured only through the environment, against real sources.

`streamlit run dashboard/app.py` in headless Chromium, with the Grafeas test server (real v1 wire
format, a release whose remote strings carry HTML and markdown) and a real Prometheus backfilled
with the demo scenario, and with each of them unreachable:

* hostile remote strings are shown literally and inject nothing (no element, no script, no link,
  no dialog, no markdown formatting);
* the On call counters equal the engine's verdict counts on the same Prometheus at the same moment;
* a source that is down gives an error panel on the half that needs it, the other half still shows.

One app server per configuration, shared by its tests (module-scoped fixtures).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from playwright.sync_api import Browser, Page, sync_playwright

from dashboard.config import load_settings
from dashboard.health import evaluate
from dashboard.sources import health_source
from dashboard.sources.demo import demo_scenario, write_openmetrics
from harness.appserver import CHROMIUM_ARGS, chromium_path, free_port, running_app, wait_for_script
from harness.grafeas_server import GrafeasTestServer

IMG = "<img src=x onerror=alert(1)>"
SCRIPT = "<script>window.__owned=1</script>"
LINK = "[x](javascript:alert(1))"
BOLD = "**bold**"
HOSTILE = (IMG, SCRIPT, LINK, BOLD)

PROJECT = "acme"
QA_NOTE = f"projects/{PROJECT}/notes/qa-approved"
RESOURCE = "https://gcr.io/acme/checkout@sha256:" + "a" * 64
# A cluster name the deployment-address parser accepts (no space, slash or quote) that is markdown.
MARKDOWN_CLUSTER = BOLD
METRIC_LABELS = ["Unhealthy", "Unknown", "Degraded", "Healthy"]
SOURCE_ERROR = "Could not read the source"


# --- the hostile release --------------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def hostile_occurrences(qa_key: ec.EllipticCurvePrivateKey, now: datetime) -> list[dict]:
    """One release of ``checkout`` whose every remote string the pages show carries HTML or markdown.

    The QA attestation is really signed, so the gate runs its whole path; a fixable HIGH
    vulnerability makes it deny, so the failed checks (which name the CVE and package) are shown.
    """
    built = now - timedelta(hours=3)
    common = {"resourceUri": RESOURCE, "createTime": _time(built), "updateTime": _time(built)}
    payload = json.dumps({"critical": {
        "identity": {"docker-reference": RESOURCE.removeprefix("https://").split("@")[0]},
        "image": {"docker-manifest-digest": RESOURCE.rsplit("@", 1)[1]},
        "type": "Google cloud binauthz container signature",
    }}).encode()
    signature = qa_key.sign(payload, ec.ECDSA(hashes.SHA256()))

    def occurrence(name: str, kind: str, note: str, **details) -> dict:
        return {**common, "name": f"projects/{PROJECT}/occurrences/{name}", "kind": kind, "noteName": note,
                **details}

    def vulnerability(name: str, note_id: str, package: str, severity: str) -> dict:
        return occurrence(name, "VULNERABILITY", f"projects/goog-vulnz/notes/{note_id}", vulnerability={
            "effectiveSeverity": severity, "severity": severity, "cvssScore": 7.5, "fixAvailable": True,
            "packageIssue": [{"affectedPackage": package, "affectedVersion": {"name": "1.0", "kind": "NORMAL"},
                              "fixedVersion": {"name": "1.1", "kind": "NORMAL"}, "fixAvailable": True,
                              "effectiveSeverity": severity}],
        })

    def deployment(name: str, address: str, deployed: datetime) -> dict:
        return {**occurrence(name, "DEPLOYMENT", f"projects/{PROJECT}/notes/deploy"),
                "createTime": _time(deployed), "updateTime": _time(deployed),
                "deployment": {"userEmail": f"{IMG}@acme.example", "deployTime": _time(deployed),
                               "address": address, "config": f"deployment.apps/{SCRIPT}",
                               "resourceUri": [RESOURCE], "platform": "GKE"}}

    attestation = {"serializedPayload": _b64(payload), "signatures": [{"signature": _b64(signature)}]}
    return [
        occurrence("scan", "DISCOVERY", "projects/goog-analysis/notes/PACKAGE_VULNERABILITY",
                   discovery={"analysisStatus": "FINISHED_SUCCESS", "lastScanTime": _time(built)}),
        occurrence("build", "BUILD", f"projects/{PROJECT}/notes/{BOLD}", build={"provenance": {
            "id": "b-1", "builderVersion": SCRIPT, "creator": f"{BOLD}@acme.example",
            "startTime": _time(built - timedelta(minutes=5)), "endTime": _time(built),
            "sourceProvenance": {"context": {"git": {"url": IMG, "revisionId": "abc123"}}}}}),
        occurrence("intoto", "BUILD", f"projects/{PROJECT}/notes/intoto", build={"intotoStatement": {
            "_type": "https://in-toto.io/Statement/v0.1", "predicateType": "https://slsa.dev/provenance/v0.1",
            "slsaProvenance": {"builder": {"id": SCRIPT}, "materials": [{"uri": IMG, "digest": {"sha1": "abc123"}}],
                               "metadata": {"buildStartedOn": _time(built - timedelta(minutes=5)),
                                            "buildFinishedOn": _time(built)}}}}),
        # The note id is the CVE id when nothing better names it; "/" would split it, so none here.
        vulnerability("cve-link", LINK, BOLD, "HIGH"),
        vulnerability("cve-img", "CVE-2023-44487", IMG, "HIGH"),
        occurrence("qa", "ATTESTATION", QA_NOTE, attestation=attestation),
        occurrence("extra", "ATTESTATION", f"projects/{PROJECT}/notes/{BOLD}{IMG}",
                   attestation=attestation),
        deployment("deploy-bold", "https://container.googleapis.com/v1/projects/acme/locations/europe-west1/"
                   f"clusters/{MARKDOWN_CLUSTER}", now - timedelta(hours=1)),
        deployment("deploy-link", f"{LINK} {SCRIPT}", now - timedelta(hours=2)),
    ]


@pytest.fixture(scope="module")
def qa_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def policy_file(tmp_path_factory, qa_key) -> Path:
    folder = tmp_path_factory.mktemp("policy")
    (folder / "qa.pub").write_bytes(qa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    path = folder / "policy.toml"
    path.write_text(
        "[gate]\n"
        f'required_attestations = ["{QA_NOTE}"]\n'
        'max_fixable_severity = "MEDIUM"\nmax_unfixable_severity = "CRITICAL"\n'
        "require_scan = true\nrequire_build_provenance = true\n"
        f'[[gate.attestor]]\nnote = "{QA_NOTE}"\npublic_keys = ["qa.pub"]\n'
    )
    return path


@pytest.fixture(scope="module")
def grafeas(qa_key) -> Iterator[GrafeasTestServer]:
    with GrafeasTestServer({PROJECT: hostile_occurrences(qa_key, datetime.now(timezone.utc))}) as server:
        yield server


@pytest.fixture(scope="module")
def hostile_grafeas_errors() -> Iterator[GrafeasTestServer]:
    """A Grafeas that refuses every request with an error message full of HTML and markdown."""
    body = json.dumps({"error": {"code": 503, "status": "UNAVAILABLE", "message": " ".join(HOSTILE)}}).encode()
    with GrafeasTestServer({}, raw_response=(503, body)) as server:
        yield server


# --- the real Prometheus --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus(prom_factory, tmp_path_factory):
    """The demo scenario backfilled into a real Prometheus, its data running a little past now so
    that the On call page (which judges "now") finds every series and the scenario's incidents."""
    end = datetime.now(timezone.utc) + timedelta(minutes=10)
    path = tmp_path_factory.mktemp("scenario") / "scenario.om"
    write_openmetrics(demo_scenario(end, nodes=8, history=timedelta(hours=1)), path)
    return prom_factory(path, name="app-scenario")


# --- the browser and the app servers --------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@dataclass
class App:
    """A running app, the environment it was started with, and where its screenshots go."""

    url: str
    env: dict[str, str]
    shots: Path
    log: Path


@dataclass
class Opened:
    page: Page
    dialogs: list[str]
    text: str


def _app(env: dict[str, str], tmp_path_factory, name: str) -> Iterator[App]:
    folder = tmp_path_factory.mktemp(name)
    log = folder / "streamlit.log"
    with running_app(env=env, log_path=log) as url:
        yield App(url, env, folder, log)


def grafeas_env(server_url: str, policy: Path) -> dict[str, str]:
    return {"GRAFEAS_URL": server_url, "GRAFEAS_PROJECT": PROJECT, "GATE_POLICY": str(policy),
            "GRAFEAS_TIMEOUT": "5"}


def down_url() -> str:
    """A port on 127.0.0.1 nothing listens on."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="module")
def demo_health_hostile_grafeas(grafeas, policy_file, tmp_path_factory) -> Iterator[App]:
    yield from _app({"PROMETHEUS_URL": "", **grafeas_env(grafeas.url, policy_file)}, tmp_path_factory, "hostile")


@pytest.fixture(scope="module")
def hostile_errors_app(hostile_grafeas_errors, policy_file, tmp_path_factory) -> Iterator[App]:
    env = {"PROMETHEUS_URL": "", **grafeas_env(hostile_grafeas_errors.url, policy_file)}
    yield from _app(env, tmp_path_factory, "hostile-errors")


@pytest.fixture(scope="module")
def real_sources(prometheus, grafeas, policy_file, tmp_path_factory) -> Iterator[App]:
    env = {"PROMETHEUS_URL": prometheus.url, "PROMETHEUS_TIMEOUT": "10", **grafeas_env(grafeas.url, policy_file)}
    yield from _app(env, tmp_path_factory, "real")


@pytest.fixture(scope="module")
def prometheus_down(grafeas, policy_file, tmp_path_factory) -> Iterator[App]:
    env = {"PROMETHEUS_URL": down_url(), "PROMETHEUS_TIMEOUT": "2", **grafeas_env(grafeas.url, policy_file)}
    yield from _app(env, tmp_path_factory, "prometheus-down")


@pytest.fixture(scope="module")
def grafeas_down(prometheus, policy_file, tmp_path_factory) -> Iterator[App]:
    env = {"PROMETHEUS_URL": prometheus.url, "PROMETHEUS_TIMEOUT": "10", **grafeas_env(down_url(), policy_file),
           "GRAFEAS_TIMEOUT": "2"}
    yield from _app(env, tmp_path_factory, "grafeas-down")


def open_page(browser: Browser, app: App, path: str, shot: str) -> Opened:
    """Open ``path``, wait for the script to finish, save a full-page screenshot as ``shot``.png."""
    dialogs: list[str] = []
    # Wide enough that the dataframes draw every column (they draw only the ones in view).
    page = browser.new_page(viewport={"width": 2800, "height": 2400})

    def record(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", record)
    page.goto(app.url + path)
    wait_for_script(page)
    page.wait_for_timeout(500)  # dataframes draw their cells after the script finished
    page.screenshot(path=str(app.shots / f"{shot}.png"), full_page=True)
    # textContent, not innerText: a dataframe is a canvas, its cells are in a visually hidden table.
    return Opened(page, dialogs, page.locator('[data-testid="stApp"]').evaluate("e => e.textContent"))


def assert_nothing_injected(opened: Opened, app: App) -> None:
    page = opened.page
    assert page.locator('[data-testid="stException"]').count() == 0, app.log.read_text()
    assert page.locator('img[src="x"]').count() == 0
    assert page.evaluate("typeof window.__owned") == "undefined"
    assert page.locator('a[href^="javascript:" i]').count() == 0
    assert page.locator("strong", has_text=re.compile(r"^\s*bold\s*$")).count() == 0
    page.wait_for_timeout(300)  # an onerror handler would fire by now
    assert opened.dialogs == []


def metric_values(page: Page) -> dict[str, int]:
    metrics = page.locator('[data-testid="stMetric"]')
    metrics.nth(3).wait_for()
    labels = [t.strip() for t in page.locator('[data-testid="stMetricLabel"]').all_inner_texts()]
    values = [int(t.strip()) for t in page.locator('[data-testid="stMetricValue"]').all_inner_texts()]
    return dict(zip(labels, values))


def engine_counts(app: App, at: datetime) -> dict[str, int]:
    """The engine's node × component verdict counts (no DNS roll-up) on the app's configuration."""
    settings = load_settings(env=app.env)
    verdicts = evaluate(health_source(settings.prometheus), settings.catalog, at=at).verdicts
    counts = verdicts[verdicts["scope"] == "node"]["verdict"].value_counts()
    return {label: int(counts.get(label.lower(), 0)) for label in METRIC_LABELS}


def evaluated_at(text: str) -> datetime:
    match = re.search(r"evaluated at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))", text)
    assert match, text
    return datetime.fromisoformat(match.group(1))


# --- 1. remote strings are text -------------------------------------------------------------------


def test_releases_page_shows_hostile_strings_literally(browser, demo_health_hostile_grafeas):
    app = demo_health_hostile_grafeas
    opened = open_page(browser, app, "/releases", "releases")
    assert "checkout" in opened.text
    assert MARKDOWN_CLUSTER in opened.text  # "running in"
    assert_nothing_injected(opened, app)


def test_release_page_shows_hostile_strings_literally(browser, demo_health_hostile_grafeas):
    app = demo_health_hostile_grafeas
    opened = open_page(browser, app, f"/release?resource={RESOURCE}", "release")
    assert "DENIED" in opened.text
    for hostile in HOSTILE:
        assert hostile in opened.text, hostile
    assert_nothing_injected(opened, app)


def test_on_call_page_on_the_health_demo_shows_hostile_deploys_literally(browser, demo_health_hostile_grafeas):
    app = demo_health_hostile_grafeas
    opened = open_page(browser, app, "/", "oncall")
    assert "DEMO health data" in opened.text
    assert set(metric_values(opened.page)) == set(METRIC_LABELS)
    assert MARKDOWN_CLUSTER in opened.text  # the recent deploy's cluster
    assert_nothing_injected(opened, app)


@pytest.mark.parametrize("path", ["/", "/releases", f"/release?resource={RESOURCE}"])
def test_a_hostile_grafeas_error_message_is_shown_as_text(browser, hostile_errors_app, path):
    app = hostile_errors_app
    opened = open_page(browser, app, path, "error-" + (path.strip("/").split("?")[0] or "oncall"))
    assert SOURCE_ERROR in opened.text
    for hostile in HOSTILE:
        assert hostile in opened.text, hostile
    assert_nothing_injected(opened, app)


# --- 2. the On call counters on a real Prometheus -------------------------------------------------


def test_on_call_counters_equal_the_engine_on_real_prometheus(browser, real_sources):
    app = real_sources
    opened = open_page(browser, app, "/", "oncall-real")
    shown = metric_values(opened.page)
    assert list(shown) == METRIC_LABELS
    assert shown == engine_counts(app, evaluated_at(opened.text))
    assert shown["Unhealthy"] > 0 and shown["Healthy"] > 0  # the scenario's incidents are live now
    assert "DEMO" not in opened.text
    assert_nothing_injected(opened, app)


# --- 3. one source unreachable --------------------------------------------------------------------


def test_release_page_with_prometheus_down_still_shows_the_supply_chain(browser, prometheus_down):
    app = prometheus_down
    opened = open_page(browser, app, f"/release?resource={RESOURCE}", "release-prometheus-down")
    assert "DENIED" in opened.text and "checks passed" in opened.text
    assert opened.page.get_by_text("Provenance").count() > 0
    assert SOURCE_ERROR in opened.text
    assert_nothing_injected(opened, app)


def test_on_call_with_prometheus_down_shows_its_error_panel(browser, prometheus_down):
    app = prometheus_down
    opened = open_page(browser, app, "/", "oncall-prometheus-down")
    panel = opened.page.locator('[data-testid="stAlert"]', has_text=SOURCE_ERROR).first
    panel.wait_for()
    assert app.env["PROMETHEUS_URL"].removeprefix("http://") in panel.inner_text()
    assert "Releases deployed in the last" in opened.text
    assert_nothing_injected(opened, app)


def test_on_call_with_grafeas_down_still_shows_health(browser, grafeas_down):
    app = grafeas_down
    opened = open_page(browser, app, "/", "oncall-grafeas-down")
    shown = metric_values(opened.page)
    assert shown == engine_counts(app, evaluated_at(opened.text))
    assert SOURCE_ERROR in opened.text
    assert_nothing_injected(opened, app)


def test_release_page_with_grafeas_down_denies_with_an_error_panel(browser, grafeas_down):
    app = grafeas_down
    opened = open_page(browser, app, f"/release?resource={RESOURCE}", "release-grafeas-down")
    assert SOURCE_ERROR in opened.text
    assert "could not evaluate: denied" in opened.text
    assert_nothing_injected(opened, app)
