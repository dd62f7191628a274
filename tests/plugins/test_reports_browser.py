"""The Reports page in a real browser: headless Chromium from Debian, driven by Selenium through
Debian's chromium-driver, logs in to the private api-server (tests/plugins/conftest.py) on the
SimpleAuthManager's login form, opens Reports from the UI's navigation and checks that every
chart inside the framed page has loaded."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from conftest import ENERGY_CHART, write_energy_run

from include.platform.stack import airflow

CHROMIUM = ("chromium", "chromedriver")
WAIT_S = 90  # the UI's first load compiles nothing, but two shared cores can be slow


@pytest.fixture(scope="session")
def chromium_paths() -> tuple[str, str]:
    """Debian's chromium and chromium-driver, apt-installed when missing (as the stack installs
    MariaDB); the test skips only when they cannot be installed."""
    if not all(shutil.which(name) for name in CHROMIUM):
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            pytest.skip("chromium and chromium-driver are not installed and this user cannot apt-get install them")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for argv in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", "chromium", "chromium-driver"]):
            done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                last = (done.stdout + done.stderr).strip().splitlines()[-1:] or ["no output"]
                pytest.skip(f"chromium could not be installed ({' '.join(argv[:2])} exit {done.returncode}: {last[0][:200]})")
    return shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture
def browser(chromium_paths, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = chromium_paths
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1400,1000", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(argument)
    # The driver is Debian's, named explicitly: Selenium Manager (which would download one) stays out.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path,
                                                               log_output=str(tmp_path / "chromedriver.log")))
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def test_login_open_reports_and_the_charts_load(reports_server, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as EC
    from selenium.webdriver.support.ui import WebDriverWait

    write_energy_run(reports_server)  # so the energy card has a chart from the lake too
    wait = WebDriverWait(browser, WAIT_S)
    try:
        browser.get(f"{reports_server.url}/")
        # Not logged in: the UI sends the browser to the auth manager's login form.
        wait.until(EC.presence_of_element_located((By.NAME, "username"))).send_keys(airflow.USER)
        browser.find_element(By.NAME, "password").send_keys(reports_server.password())
        browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()

        # Logged in: the navigation has the plugin's entry; it opens the page framed in the UI.
        wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, 'a[href$="plugin/reports"]'))).click()
        wait.until(EC.url_contains("/plugin/reports"))
        wait.until(EC.frame_to_be_available_and_switch_to_it((By.CSS_SELECTOR, 'iframe[title="Reports"]')))
        wait.until(EC.presence_of_element_located((By.ID, "card-streaming")))
        assert browser.find_element(By.TAG_NAME, "h1").text == "Reports"

        charts = browser.find_elements(By.CSS_SELECTOR, "img.chart")
        sources = sorted(c.get_attribute("src") for c in charts)
        assert any(s.endswith("/reports/charts/air_quality_daily_aqi.svg") for s in sources), sources
        assert any(s.endswith(f"/reports/energy/charts/2026-12-02/{ENERGY_CHART}") for s in sources), sources
        # Loaded: every image finished and decoded to a picture (a refused or broken one has no width).
        wait.until(lambda d: d.execute_script(
            "return [...document.querySelectorAll('img.chart')].every(i => i.complete && i.naturalWidth > 0)"))
        sizes = browser.execute_script(
            "return [...document.querySelectorAll('img.chart')].map(i => [i.naturalWidth, i.naturalHeight])")
        assert [760, 320] in sizes and [40, 30] in sizes, sizes
        for card in ("energy", "air-quality", "access-logs", "streaming"):
            assert browser.find_element(By.ID, f"card-{card}").get_attribute("data-state") == "ok", card
    finally:
        browser.switch_to.default_content()
        browser.save_screenshot(str(tmp_path / "reports.png"))
