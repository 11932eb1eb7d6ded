"""End to end in a real headless Chromium: the app starts on the demo and shows verdicts."""

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
