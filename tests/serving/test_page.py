"""The live feed page in a real headless browser (Debian's chromium, driven by Selenium)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.serving.conftest import free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@contextmanager
def serving_demo(run: Path, state: Path, news: Path | None = None) -> Iterator[str]:
    """``mmnewsrec serve --demo`` as a process, until the block ends; yields its URL."""
    port = free_port()
    command = [sys.executable, "-m", "mmnewsrec", "-q", "serve", "--run", str(run), "--demo"]
    command += ["--state", f"sqlite:///{state}", "--port", str(port)] + (["--news", str(news)] if news else [])
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while True:
            if server.poll() is not None:
                pytest.fail(f"serve exited: {server.stderr.read().decode()}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail("serve did not start within 120 s")
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture()
def demo_server(word_run: Path, tiny_mind: Path, tmp_path: Path) -> Iterator[str]:
    """``mmnewsrec serve --demo`` on the tiny run, with a few users who clicked already."""
    from mmnewsrec.serving.state import Event, SQLiteStore

    state = tmp_path / "state.db"
    news_ids = [line.split("\t")[0] for line in (tiny_mind / "dev" / "news.tsv").read_text().splitlines()]
    store = SQLiteStore(state)
    store.record(
        [Event(f"reader{u}", news_ids[(u * 11 + i) % len(news_ids)], 1000 + i) for u in range(3) for i in range(4)]
    )
    store.close()
    with serving_demo(word_run, state, tiny_mind) as url:
        yield url


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


@pytest.mark.slow
def test_a_fresh_service_on_a_phone_welcomes_a_new_reader_and_keeps_hostile_titles_in_their_cards(
    word_run: Path, tmp_path: Path, browser
) -> None:
    """No users and only posted news: the page shows a new reader's cold-start feed and says what to
    do. At 390 px a 200-character unbroken title stays inside its card, a right-to-left override
    does not flip its title, and after Read a notice on screen says what changed. /docs and /redoc
    render in a browser that reaches nothing but the service."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    long_title, flipped = "W" * 200, "\u202eevil title"
    news = [
        {"news_id": "LONG", "category": "sports", "title": long_title, "abstract": "x" * 300},
        {"news_id": "RTL", "category": "news", "title": flipped},
        *({"news_id": f"N{i}", "category": "news", "title": f"an ordinary story {i}"} for i in range(4)),
    ]
    with serving_demo(word_run, tmp_path / "state.db") as url:
        assert httpx.post(f"{url}/news", json={"news": news}, timeout=60).status_code == 201
        browser.set_window_size(390, 844)
        browser.get(url + "/")
        wait = WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException, IndexError))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#feed .card")) == len(news))
        assert "No readers yet" in browser.find_element(By.ID, "status").text
        assert "No clicks yet" in browser.find_element(By.ID, "history").text
        width = browser.execute_script("return window.innerWidth")
        assert browser.execute_script("return document.documentElement.scrollWidth") <= width
        for card in browser.find_elements(By.CSS_SELECTOR, "#feed .card"):
            inside = browser.execute_script(
                "const c = arguments[0].getBoundingClientRect();"
                "return [...arguments[0].querySelectorAll('h3, p')].every("
                "  (e) => { const r = e.getBoundingClientRect(); return r.left >= c.left && r.right <= c.right; });",
                card,
            )
            assert inside and card.rect["x"] + card.rect["width"] <= width, card.get_attribute("data-news-id")
        rtl = browser.find_element(By.CSS_SELECTOR, "#feed .card[data-news-id='RTL'] h3")
        assert rtl.text == "evil title" and "\u202e" not in browser.execute_script(
            "return arguments[0].textContent", rtl
        )
        browser.save_screenshot(str(tmp_path / "phone-welcome.png"))

        first = browser.find_elements(By.CSS_SELECTOR, "#feed .card")[0]
        clicked = first.get_attribute("data-news-id")
        first.find_element(By.XPATH, ".//button[text()='Read']").click()
        wait.until(lambda d: d.find_element(By.ID, "notice").is_displayed())
        notice = browser.find_element(By.ID, "notice")
        box = browser.execute_script(
            "const r = arguments[0].getBoundingClientRect(); return [r.top, r.bottom];", notice
        )
        assert 0 <= box[0] and box[1] <= browser.execute_script("return window.innerHeight")  # in view, no scrolling
        assert "added to recent clicks" in notice.text
        wait.until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "#history li")[0].get_attribute("data-news-id") == clicked
        )
        browser.save_screenshot(str(tmp_path / "phone-after-read.png"))
        browser.set_window_size(1280, 900)  # the API docs render from the package's own assets, offline
        for page, selector in (("/docs", ".opblock"), ("/redoc", "[data-section-id^='operation']")):
            browser.get(url + page)
            wait.until(lambda d, s=selector: len(d.find_elements(By.CSS_SELECTOR, s)) >= 10)
    shots = Path(__file__).parent.parent.parent / "runs" / "page-screenshots"
    if shots.parent.is_dir():
        shots.mkdir(exist_ok=True)
        for name in ("phone-welcome.png", "phone-after-read.png"):
            shutil.copy(tmp_path / name, shots / name)
