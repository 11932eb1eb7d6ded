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
    "release.png": ("release?resource={denied}", '[data-testid="stDataFrame"]'),
}


def a_denied_release() -> str:
    """A demo release the gate denies: the Release page's most telling example."""
    from dashboard.config import load_settings
    from dashboard.provenance import release_table
    from dashboard.supply_chain import gate_policy, read_supply_chain

    settings = load_settings({}, env={})
    table = release_table(read_supply_chain(settings).occurrences, gate_policy(settings))
    return quote(table.loc[~table["allowed"], "resource_uri"].iloc[0], safe="")


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    with running_app(env={"PROMETHEUS_URL": "", "GRAFEAS_URL": ""}) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 2400})
        denied = a_denied_release()
        for filename, (path, ready) in PAGES.items():
            page.goto(f"{url}/{path.format(denied=denied)}")
            wait_for_script(page)
            page.locator(ready).first.wait_for()
            page.wait_for_timeout(1500)  # let the data grid finish painting
            page.screenshot(path=str(DOCS / filename), full_page=True)
            print(f"wrote {DOCS / filename}")
        browser.close()


if __name__ == "__main__":
    main()
