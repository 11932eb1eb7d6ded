"""End to end in a real headless Chromium: the app starts on the demo and shows verdicts."""

from urllib.parse import quote

import pytest
from playwright.sync_api import sync_playwright

from harness.appserver import CHROMIUM_ARGS, chromium_path, running_app, running_make_run, wait_for_script


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def test_health_page_on_the_demo_shows_verdicts_and_says_it_is_a_demo(browser, tmp_path):
    with running_app(env={"PROMETHEUS_URL": ""}, log_path=tmp_path / "streamlit.log") as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{url}/health")
        wait_for_script(page)
        page.get_by_text("Embedded demo").first.wait_for()
        assert page.get_by_role("heading", name="Cluster health").is_visible()
        page.get_by_role("heading", name="Verdicts over time").wait_for()
        page.locator('[data-testid="stPlotlyChart"]').first.wait_for()
        metrics = page.locator('[data-testid="stMetric"]').all_inner_texts()
        assert any(m.startswith("Unhealthy") for m in metrics)
        unhealthy = next(m for m in metrics if m.startswith("Unhealthy"))
        assert int(unhealthy.split()[-1]) > 0  # the demo's incidents are visible
        page.screenshot(path=str(tmp_path / "health.png"))


def test_unreachable_prometheus_is_an_error_not_a_crash(browser, tmp_path):
    env = {"PROMETHEUS_URL": "http://127.0.0.1:9", "PROMETHEUS_TIMEOUT": "2"}
    with running_app(env=env, log_path=tmp_path / "streamlit.log") as url:
        page = browser.new_page()
        page.goto(url)
        wait_for_script(page)
        alert = page.locator('[data-testid="stAlert"]', has_text="Could not read the source").first
        alert.wait_for()
        assert "127.0.0.1:9" in alert.inner_text()
        assert page.locator('[data-testid="stException"]').count() == 0


def test_make_run_serves_the_page_on_a_plain_environment(browser, tmp_path):
    """`make run` exactly as the README says, PYTHONPATH unset: the page renders, no traceback."""
    log = tmp_path / "make-run.log"
    with running_make_run(env={"PROMETHEUS_URL": "", "GRAFEAS_URL": ""}, log_path=log) as url:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(url)
        wait_for_script(page)
        page.get_by_role("heading", name="On call").wait_for()
        page.locator('[data-testid="stMetric"]').nth(3).wait_for()
        assert page.locator('[data-testid="stException"]').count() == 0, log.read_text()


def _a_demo_release() -> tuple[str, str]:
    """(service, resource URI) of a demo release the gate denies, as `releases` lists it."""
    from dashboard.config import load_settings
    from dashboard.provenance import release_table
    from dashboard.supply_chain import gate_policy, read_supply_chain

    settings = load_settings({}, env={})
    table = release_table(read_supply_chain(settings).occurrences, gate_policy(settings))
    denied = table.loc[~table["allowed"]].iloc[0]
    return denied["service"], denied["resource_uri"]


# (name, path and query, a heading the page shows, an element that shows the page has its data)
SERVICE, RESOURCE = _a_demo_release()
PAGES = [
    ("on-call", "", "On call", '[data-testid="stMetric"]'),
    ("on-call-deep", "?cluster=staging", "On call", '[data-testid="stMetric"]'),
    ("health", "health", "Cluster health", '[data-testid="stPlotlyChart"]'),
    ("health-deep", "health?cluster=staging&range=24h&node=node-04", "Cluster health", '[data-testid="stPlotlyChart"]'),
    ("releases", "releases", "Releases", '[data-testid="stDataFrame"]'),
    ("releases-deep", f"releases?service={quote(SERVICE, safe='')}&gate=denied", "Releases",
     '[data-testid="stDataFrame"]'),
    ("release", f"release?resource={quote(RESOURCE, safe='')}", "Release", '[data-testid="stDataFrame"]'),
]


@pytest.fixture(scope="module")
def demo_app(tmp_path_factory):
    log = tmp_path_factory.mktemp("app") / "streamlit.log"
    with running_app(env={"PROMETHEUS_URL": "", "GRAFEAS_URL": ""}, log_path=log) as url:
        yield url


@pytest.mark.parametrize(("name", "path", "heading", "ready"), PAGES, ids=[page[0] for page in PAGES])
def test_every_page_and_a_deep_link_of_each_renders_in_chromium(browser, demo_app, tmp_path, name, path, heading,
                                                                   ready):
    page = browser.new_page(viewport={"width": 1600, "height": 1400})
    page.goto(f"{demo_app}/{path}")
    # Generous: a cold Releases page judges the impact of every demo deployment before its table shows.
    wait_for_script(page, timeout_ms=240_000)
    page.get_by_role("heading", name=heading, exact=True).wait_for()
    page.locator(ready).first.wait_for()
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.get_by_text("was ignored").count() == 0  # every deep link's parameters were understood
    page.screenshot(path=str(tmp_path / f"{name}.png"), full_page=True)
    if name == "on-call-deep":
        assert page.url.endswith("?cluster=staging")  # the picker took the link's cluster and mirrors it back
    if name == "health-deep":
        page.get_by_role("heading", name="Verdicts over time on node-04").wait_for()
    if name == "releases-deep":
        assert "gate=denied" in page.url and quote(SERVICE, safe="") in page.url  # the filters stayed applied
    if name == "release":
        assert page.get_by_text(RESOURCE).count() >= 1
    page.close()
