"""The live feed page in a real headless browser (Debian's chromium, driven by Selenium)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.serving.conftest import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.fixture()
def demo_server(word_run: Path, tiny_mind: Path, tmp_path: Path):
    """``mmnewsrec serve --demo`` on the tiny run, with a few users who clicked already."""
    from mmnewsrec.serving.state import Event, SQLiteStore

    state = tmp_path / "state.db"
    news_ids = [line.split("\t")[0] for line in (tiny_mind / "dev" / "news.tsv").read_text().splitlines()]
    store = SQLiteStore(state)
    store.record(
        [Event(f"reader{u}", news_ids[(u * 11 + i) % len(news_ids)], 1000 + i) for u in range(3) for i in range(4)]
    )
    store.close()
    port = free_port()
    command = [sys.executable, "-m", "mmnewsrec", "-q", "serve", "--run", str(word_run), "--news", str(tiny_mind)]
    command += ["--state", f"sqlite:///{state}", "--port", str(port), "--demo"]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while True:
        if server.poll() is not None:
            pytest.fail(f"serve exited: {server.stderr.read().decode()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                server.kill()
                pytest.fail("serve did not start within 120 s")
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}"
    server.send_signal(signal.SIGTERM)
    server.wait(timeout=30)


@pytest.fixture()
def browser():
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.fail("the page test needs chromium and chromedriver: apt-get install -y chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.mark.slow
def test_clicking_a_card_updates_history_and_feed_without_a_reload(demo_server: str, browser, tmp_path: Path) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException, IndexError))
    browser.get(demo_server + "/")
    samples = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#samples button"))
    assert [b.text for b in samples][:3] and all(b.text.startswith("reader") for b in samples)
    assert not browser.find_element(By.ID, "token-form").is_displayed()  # demo mode: no token asked
    samples[0].click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#feed .card")) == 12)
    user = browser.find_element(By.ID, "user-id").get_attribute("value")
    history_before = [li.get_attribute("data-news-id") for li in browser.find_elements(By.CSS_SELECTOR, "#history li")]
    feed_before = [c.get_attribute("data-news-id") for c in browser.find_elements(By.CSS_SELECTOR, "#feed .card")]
    browser.save_screenshot(str(tmp_path / "desktop-before.png"))
    marker = browser.execute_script("window.notReloaded = true; return window.location.href;")

    first = browser.find_elements(By.CSS_SELECTOR, "#feed .card")[0]
    clicked = first.get_attribute("data-news-id")
    first.find_element(By.XPATH, ".//button[text()='Read']").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#history li")[0].get_attribute("data-news-id") == clicked)
    feed_after = [c.get_attribute("data-news-id") for c in browser.find_elements(By.CSS_SELECTOR, "#feed .card")]
    history_after = [li.get_attribute("data-news-id") for li in browser.find_elements(By.CSS_SELECTOR, "#history li")]
    assert len(history_after) == len(history_before) + 1 and history_after[1:] == history_before
    assert clicked not in feed_after and feed_after != feed_before
    marked = browser.find_elements(By.CSS_SELECTOR, "#feed .card.new, #feed .card.moved")
    assert marked, "the cards that moved and the new ones are marked"
    assert browser.execute_script("return window.notReloaded === true") and browser.current_url == marker
    assert clicked not in browser.current_url and user not in browser.current_url.split("/", 3)[-1]
    stored = httpx.get(f"{demo_server}/users/{user}").json()["history"]
    assert stored[-1]["news_id"] == clicked

    why = browser.find_elements(By.CSS_SELECTOR, "#feed .card")[0].find_element(
        By.XPATH, ".//button[text()='Why this?']"
    )
    why.click()
    box = wait.until(ready.presence_of_element_located((By.CSS_SELECTOR, "#feed .card .why li")))
    assert "weight" in box.text and "similarity" in box.text
    browser.save_screenshot(str(tmp_path / "desktop-after.png"))

    browser.set_window_size(390, 844)  # a phone: one column, the feed first
    time.sleep(0.3)
    feed, history = browser.find_element(By.ID, "feed-pane"), browser.find_element(By.ID, "history-pane")
    assert feed.location["y"] < history.location["y"] and feed.size["width"] <= 390
    browser.save_screenshot(str(tmp_path / "phone.png"))
    for name in ("desktop-before.png", "desktop-after.png", "phone.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    shots = Path(__file__).parent.parent.parent / "runs" / "page-screenshots"
    if shots.parent.is_dir():  # keep the last screenshots for the developer to look at
        shots.mkdir(exist_ok=True)
        for name in ("desktop-before.png", "desktop-after.png", "phone.png"):
            shutil.copy(tmp_path / name, shots / name)


@pytest.mark.slow
def test_the_page_is_keyboard_usable(demo_server: str, browser) -> None:
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException, IndexError))
    browser.get(demo_server + "/")
    field = wait.until(lambda d: d.find_element(By.ID, "user-id"))
    field.send_keys("reader1", Keys.ENTER)  # the form submits on Enter
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#feed .card")) == 12)
    read = browser.find_elements(By.CSS_SELECTOR, "#feed .card button")[0]
    clicked = read.find_element(By.XPATH, "./ancestor::li").get_attribute("data-news-id")
    read.send_keys(Keys.ENTER)  # buttons, so Enter activates them
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#history li")[0].get_attribute("data-news-id") == clicked)
    focused = browser.switch_to.active_element
    assert focused.tag_name == "button"  # focus lands on the new first card
