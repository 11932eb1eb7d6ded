"""Takes the README's screenshots: the app on the embedded demo, in Debian's headless Chromium.

Usage: ``.venv/bin/python -m scripts.screenshots`` (writes docs/*.png).
"""

from pathlib import Path
from urllib.parse import quote

from playwright.sync_api import sync_playwright

from harness.appserver import CHROMIUM_ARGS, chromium_path, running_app, wait_for_script

DOCS = Path(__file__).resolve().parent.parent / "docs"
# file: (path and query, an element that shows the page has its data)
PAGES = {
    "oncall.png": ("", '[data-testid="stMetric"]'),
    "health.png": ("health", '[data-testid="stPlotlyChart"]'),
    "releases.png": ("releases", '[data-testid="stDataFrame"]'),
    "release.png": ("release?resource={release}", '[data-testid="stDataFrame"]'),
}


def a_judged_release() -> str:
    """The demo release deployed last whose after-window has ended: the Release page then shows the
    cluster before and after it, with an impact verdict."""
    from datetime import datetime, timedelta, timezone

    from dashboard.config import load_settings
    from dashboard.deployments import deployments_between
    from dashboard.impact import ImpactRules
    from dashboard.supply_chain import read_supply_chain

    settings = load_settings({}, env={})
    now = datetime.now(timezone.utc)
    markers = deployments_between(read_supply_chain(settings).occurrences, now - timedelta(days=1),
                                  now - ImpactRules().window - timedelta(minutes=5))
    return quote(markers["resource_uri"].iloc[-1], safe="")


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    with running_app(env={"PROMETHEUS_URL": "", "GRAFEAS_URL": ""}) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 2400})
        release = a_judged_release()
        for filename, (path, ready) in PAGES.items():
            page.goto(f"{url}/{path.format(release=release)}")
            wait_for_script(page)
            page.locator(ready).first.wait_for()
            page.wait_for_timeout(1500)  # let the data grid finish painting
            page.screenshot(path=str(DOCS / filename), full_page=True)
            print(f"wrote {DOCS / filename}")
        browser.close()


if __name__ == "__main__":
    main()
