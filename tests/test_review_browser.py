"""The blind review page in a real browser: headless Chromium from the system's packages,
driven by selenium with the system chromedriver (no browser or driver download).

A person is played by the test: it clicks the true matches of the tiny synthetic target, and
the scores of the saved judgments equal those of judgments made from the true identities on
the same pool; the same by keyboard only; judgments survive a reload; a 200 x 20 page stays
quick. Without selenium, Chromium or chromedriver these tests skip, saying which is missing
(the scoring tests of test_review_score.py run anyway).
"""

import glob
import json
import os
import re
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from fastreid_mmt.retrieval.review_judgments import judgments_from_ids, load_judgments
from fastreid_mmt.retrieval.review_page import write_review_page
from fastreid_mmt.retrieval.review_pool import ReviewModel, build_pool, load_pool
from fastreid_mmt.retrieval.review_score import score_pool
from fastreid_mmt.retrieval.review_workflow import build_review

from .conftest import save_source_checkpoints, scratch_dir, small_mmt_cfg

BROWSERS = ("chromium", "chromium-browser")
DRIVER = "chromedriver"
INSTALL_HINT = "apt-get install chromium chromium-driver"
BROWSER_ARGS = ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,900")
MARKET = "Market-1501-v15.09.15"
MARKET_SPLITS = ("query", "bounding_box_test")
CAMERA_RULE = r"c(\d)"
NAME = re.compile(r"([-\d]+)_c(\d)")
QUERIES, TOPK = 12, 5
# Seconds to wait for the page or a download; limits of the 200 x 20 page.
WAIT_S = 20
LOAD_LIMIT_S = 10
NAVIGATE_LIMIT_S = 60
BIG_QUERIES, BIG_CANDIDATES = 200, 20
# Queries of the big page judged per batch of key presses.
KEY_BATCH = 20
THUMB_SIZE = (16, 32)
CANDIDATES = "#candidates .candidate"


def person(path):
    """The true identity in a Market-1501 file name; distractors (0000, -1) are nobody."""
    pid = NAME.search(os.path.basename(path)).group(1)
    return None if int(pid) <= 0 else pid


def true_judgments(pool):
    return judgments_from_ids(pool, [person(q.path) for q in pool.queries], [person(p) for p in pool.gallery])


@pytest.fixture(scope="module")
def chromium():
    """Paths of the system Chromium and chromedriver, or a skip naming what is missing."""
    pytest.importorskip("selenium", reason="selenium is not installed (pip install -e '.[test]')")
    binary = next((path for path in map(shutil.which, BROWSERS) if path), None)
    driver = shutil.which(DRIVER)
    if binary is None or driver is None:
        missing = " and ".join(name for name, path in (("Chromium", binary), ("chromedriver", driver)) if not path)
        pytest.skip(f"no {missing} on this machine: the browser tests need them ({INSTALL_HINT})")
    return SimpleNamespace(binary=binary, driver=driver)


@pytest.fixture
def browser(chromium, tmp_path, monkeypatch):
    """A fresh headless Chromium (its own profile: empty storage) saving downloads in tmp_path."""
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never fetch anything
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium.binary
    for arg in BROWSER_ARGS:
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    try:
        driver = webdriver.Chrome(service=Service(executable_path=chromium.driver), options=options)
    except WebDriverException as err:
        pytest.skip(f"headless Chromium ({chromium.binary}) does not start: {err.msg}")
    driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    yield SimpleNamespace(driver=driver, downloads=downloads)
    driver.quit()


@pytest.fixture(scope="module")
def page(tmp_path_factory, tiny_data):
    """A review of two random checkpoints on an unlabelled folder of the tiny Market test images."""
    with scratch_dir(tmp_path_factory, "review_page") as folder:
        cfg = small_mmt_cfg()
        (folder / "cfg.yaml").write_text(cfg.dump())
        before, after = save_source_checkpoints(cfg, folder / "ckpt")
        images = folder / "images"
        images.mkdir()
        for split in MARKET_SPLITS:
            for path in glob.glob(os.path.join(tiny_data, MARKET, split, "*.jpg")):
                shutil.copy(path, images)
        out = folder / "review"
        written = build_review(str(folder / "cfg.yaml"), [("before", before, "--weights-before"),
                                                          ("after", after, "--weights")], str(images), str(out),
                               ["DATALOADER.NUM_WORKERS", "0"], queries=QUERIES, topk=TOPK, cameras=CAMERA_RULE)
        pool = written["pool"]
        expected = true_judgments(pool)
        assert any(entry["same"] for entry in expected["queries"].values())  # something to click
        yield SimpleNamespace(html=written["page"], pool_file=written["pool_file"], pool=pool, expected=expected)


def open_page(driver, html):
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(Path(html).as_uri())
    WebDriverWait(driver, WAIT_S).until(lambda d: d.find_elements("css selector", CANDIDATES))


def shown(driver):
    """The candidates on screen: (element, gallery index)."""
    return [(item, int(item.get_attribute("data-g"))) for item in driver.find_elements("css selector", CANDIDATES)]


def keys(driver, text):
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(text).perform()


def save(browser, pool_id, by_key=False):
    """Save through the page (button or S) and read the downloaded judgments file."""
    if by_key:
        keys(browser.driver, "s")
    else:
        browser.driver.find_element("id", "save").click()
    path = browser.downloads / f"judgments-{pool_id}.json"
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        if path.exists():
            try:
                return path, json.loads(path.read_text())
            except json.JSONDecodeError:
                pass  # still being written
        time.sleep(0.1)
    raise AssertionError(f"no download {path} after {WAIT_S} s: {os.listdir(browser.downloads)}")


def click_matches(driver, expected_same):
    for item, g in shown(driver):
        if g in expected_same:
            item.click()


def progress(driver):
    return driver.find_element("id", "progress-text").text


@pytest.mark.slow
def test_clicked_true_matches_score_like_the_true_ids(browser, page):
    driver = browser.driver
    open_page(driver, page.html)
    for q in range(QUERIES):
        assert driver.find_element("id", "query-number").text == f"{q + 1} of {QUERIES}"
        assert [g for _, g in shown(driver)] == page.pool.queries[q].candidates
        click_matches(driver, page.expected["queries"][str(q)]["same"])
        driver.find_element("id", "next").click()
    assert progress(driver) == f"{QUERIES} of {QUERIES} judged"
    assert "All 12 queries judged" in driver.find_element("id", "status").text
    path, saved = save(browser, page.pool.pool_id)
    assert saved["queries"] == page.expected["queries"]
    pool = load_pool(page.pool_file)
    clicked = score_pool(pool, load_judgments(str(path), pool, page.pool_file))
    truth = score_pool(pool, {int(q): set(v["same"]) for q, v in page.expected["queries"].items()})
    assert clicked == truth


@pytest.mark.slow
def test_keyboard_only(browser, page):
    from selenium.webdriver.common.keys import Keys

    driver = browser.driver
    open_page(driver, page.html)
    for q in range(QUERIES):
        candidates = [g for _, g in shown(driver)]
        tops = [item.location["y"] for item, _ in shown(driver)]
        columns = tops.count(tops[0])
        for index, g in enumerate(candidates):
            if g in page.expected["queries"][str(q)]["same"]:
                if q % 2 == 0 and index < 10:
                    keys(driver, str((index + 1) % 10) + Keys.SPACE)
                else:  # arrows from the first candidate: rows down, then right
                    keys(driver, "1" + Keys.ARROW_DOWN * (index // columns) + Keys.ARROW_RIGHT * (index % columns)
                         + (Keys.ARROW_UP + Keys.ARROW_DOWN) * (index >= columns) + "x")
        keys(driver, Keys.ENTER if q % 2 == 0 else "n")
    assert progress(driver) == f"{QUERIES} of {QUERIES} judged"
    _, saved = save(browser, page.pool.pool_id, by_key=True)
    assert saved["queries"] == page.expected["queries"]


@pytest.mark.slow
def test_reload_resumes_where_the_person_left(browser, page):
    from selenium.webdriver.common.keys import Keys

    driver = browser.driver
    half = QUERIES // 2
    open_page(driver, page.html)
    for q in range(half):
        click_matches(driver, page.expected["queries"][str(q)]["same"])
        keys(driver, Keys.ENTER)
    shown(driver)[0][0].click()  # a mark on the current query, not yet judged
    driver.refresh()
    open_page(driver, page.html)
    assert progress(driver) == f"{half} of {QUERIES} judged"
    assert driver.find_element("id", "query-number").text == f"{half + 1} of {QUERIES}"
    assert "same" in shown(driver)[0][0].get_attribute("class")
    assert driver.find_element("id", "status").text.startswith(f"Resumed: {half} of {QUERIES}")
    shown(driver)[0][0].click()  # unmark it again
    keys(driver, "p")
    marked = {g for item, g in shown(driver) if "same" in item.get_attribute("class")}
    assert marked == set(page.expected["queries"][str(half - 1)]["same"])
    keys(driver, Keys.ENTER)
    for q in range(half, QUERIES):
        click_matches(driver, page.expected["queries"][str(q)]["same"])
        keys(driver, Keys.ENTER)
    _, saved = save(browser, page.pool.pool_id)
    assert saved["queries"] == page.expected["queries"]


@pytest.fixture
def big_page(tmp_path):
    """A 200-query page with 20 candidates each (two models' disjoint top-10), on tiny images."""
    gallery_size = BIG_QUERIES + BIG_CANDIDATES
    paths = []
    for i in range(gallery_size):
        path = tmp_path / "img" / f"{i}.png"
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", THUMB_SIZE, (i % 256, (7 * i) % 256, (13 * i) % 256)).save(path)
        paths.append(str(path))
    half = BIG_CANDIDATES // 2
    rankings = {"a": [[(q + j) % gallery_size for j in range(half)] for q in range(BIG_QUERIES)],
                "b": [[(q + half + j) % gallery_size for j in range(half)] for q in range(BIG_QUERIES)]}
    models = [ReviewModel("a", "a.pth", "a" * 64), ReviewModel("b", "b.pth", "b" * 64)]
    pool = build_pool(models, paths[:BIG_QUERIES], None, paths, None, rankings, half, "self", 0)
    return pool, write_review_page(pool, str(tmp_path / "big"))


@pytest.mark.slow
def test_200_queries_by_20_candidates_stay_quick(browser, big_page):
    from selenium.webdriver.common.keys import Keys

    pool, html = big_page
    driver = browser.driver
    start = time.monotonic()
    open_page(driver, html)
    loaded = time.monotonic() - start
    assert loaded < LOAD_LIMIT_S and len(shown(driver)) == BIG_CANDIDATES
    tops = [item.location["y"] for item, _ in shown(driver)]
    columns = tops.count(tops[0])
    assert columns < BIG_CANDIDATES  # more than one row: up / down move by a row
    keys(driver, Keys.ARROW_DOWN)
    assert [i for i, (item, _) in enumerate(shown(driver)) if "cursor" in item.get_attribute("class")] == [columns]
    keys(driver, Keys.ARROW_UP)
    start = time.monotonic()
    for _ in range(0, BIG_QUERIES, KEY_BATCH):
        keys(driver, ("1" + Keys.SPACE + Keys.ENTER) * KEY_BATCH)  # mark the first candidate, next
    navigated = time.monotonic() - start
    assert progress(driver) == f"{BIG_QUERIES} of {BIG_QUERIES} judged", navigated
    assert navigated < NAVIGATE_LIMIT_S and len(shown(driver)) == BIG_CANDIDATES
    _, saved = save(browser, pool.pool_id, by_key=True)
    assert saved["queries"] == {str(q): {"same": [query.candidates[0]]} for q, query in enumerate(pool.queries)}
