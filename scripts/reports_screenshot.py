"""Screenshot of the Reports page of a running demo, for the README (docs/images/reports.png).

    .venv/bin/python scripts/reports_screenshot.py [--url http://localhost:8080] [--out docs/images/reports.png]

Logs in as the demo's admin (password from the stack's secrets file, never printed), opens
Reports from the UI's navigation as a user would, waits until every chart in the framed page
has loaded and saves the whole page. Needs Debian's `chromium` and `chromium-driver`
(`apt-get install chromium chromium-driver`; the browser test installs them too).
The same steps as tests/plugins/test_reports_browser.py, against the demo instead of a test server.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from include.platform.stack import airflow  # noqa: E402
from include.platform.stack.service import StackConfig  # noqa: E402

WAIT_S = 120


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://localhost:8080")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "reports.png")
    parser.add_argument("--width", type=int, default=1400)
    args = parser.parse_args()
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        sys.exit("needs Debian's chromium and chromium-driver: apt-get install chromium chromium-driver")
    password = airflow.password(StackConfig())
    if not password:
        sys.exit("no admin password in the stack's secrets file: start the demo first (make demo)")

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    with tempfile.TemporaryDirectory() as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium")
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         f"--window-size={args.width},1000", f"--user-data-dir={profile}"):
            options.add_argument(argument)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))
        try:
            wait = WebDriverWait(driver, WAIT_S)
            driver.get(f"{args.url}/")
            wait.until(EC.presence_of_element_located((By.NAME, "username"))).send_keys(airflow.USER)
            driver.find_element(By.NAME, "password").send_keys(password)
            driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
            wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, 'a[href$="plugin/reports"]'))).click()
            wait.until(EC.frame_to_be_available_and_switch_to_it((By.CSS_SELECTOR, 'iframe[title="Reports"]')))
            wait.until(EC.presence_of_element_located((By.ID, "card-streaming")))
            wait.until(lambda d: d.execute_script(
                "return [...document.querySelectorAll('img.chart')].every(i => i.complete && i.naturalWidth > 0)"))
            # The framed page's full height, so that one picture shows every card.
            height = driver.execute_script("return document.documentElement.scrollHeight")
            driver.switch_to.default_content()
            driver.set_window_size(args.width, min(height + 200, 6000))
            wait.until(EC.frame_to_be_available_and_switch_to_it((By.CSS_SELECTOR, 'iframe[title="Reports"]')))
            wait.until(lambda d: d.execute_script(
                "return [...document.querySelectorAll('img.chart')].every(i => i.complete && i.naturalWidth > 0)"))
            driver.switch_to.default_content()
            args.out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.out))
        finally:
            driver.quit()
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
