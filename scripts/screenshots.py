"""Takes the README's screenshots: the app on the embedded demo, in Debian's headless Chromium.

Usage: ``.venv/bin/python -m scripts.screenshots`` (writes docs/*.png).
"""

from pathlib import Path

from playwright.sync_api import sync_playwright

from tests.appserver import CHROMIUM_ARGS, chromium_path, running_app, wait_for_script

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = {"health.png": ""}


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    with running_app(env={"PROMETHEUS_URL": "", "GRAFEAS_URL": ""}) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        for filename, path in PAGES.items():
            page.goto(f"{url}/{path}")
            wait_for_script(page)
            page.locator('[data-testid="stDataFrame"]').first.wait_for()
            page.wait_for_timeout(1500)  # let the data grid finish painting
            page.screenshot(path=str(DOCS / filename), full_page=True)
            print(f"wrote {DOCS / filename}")
        browser.close()


if __name__ == "__main__":
    main()
