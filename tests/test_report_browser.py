"""report.html as a person sees it: headless Chromium loads every image and paints a non-blank page.

Needs /usr/bin/chromium and /usr/bin/chromedriver (``apt-get install chromium chromium-driver``) and
selenium; skipped without them unless ``TINYDIFFUSION_REQUIRE_BROWSER=1``, which makes their absence
a failure (for CI machines that are meant to have them).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinydiffusion.report import write_report

from test_report import make_run_dir

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1200,900")


def _need_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        message = f"headless browser test needs {', '.join(missing)}"
        if os.environ.get("TINYDIFFUSION_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def browser(tmp_path):
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_report_renders_in_chromium(tmp_path, browser):
    run, media = make_run_dir(tmp_path)
    page = write_report(run, media)
    browser.get(page.resolve().as_uri())
    images = browser.execute_script(
        "return Array.from(document.images).map(im => ({complete: im.complete, w: im.naturalWidth,"
        " shown: im.getBoundingClientRect().width}));")
    assert len(images) == 11
    assert all(im["complete"] and im["w"] > 0 and im["shown"] > 0 for im in images), images
    sections = browser.execute_script("return Array.from(document.querySelectorAll('section')).map(s => s.id);")
    assert sections == ["summary", "data", "loss", "samples", "process", "metrics", "config"]

    # the summary card, with its quality line and its samples, is on the first screen (1200 x 900)
    first = browser.execute_script(
        "const card = document.getElementById('summary').getBoundingClientRect();"
        "const quality = Array.from(document.querySelectorAll('#summary th'))"
        "  .find(th => th.textContent === 'quality').getBoundingClientRect();"
        "const image = document.querySelector('#summary img').getBoundingClientRect();"
        "return {top: card.top, quality: quality.bottom, image: image.top, screen: window.innerHeight};")
    assert 0 <= first["top"] and first["quality"] < first["screen"] and first["image"] < first["screen"], first

    # the whole page in one screenshot, as a reader scrolling through it sees it
    height = browser.execute_script("return document.documentElement.scrollHeight;")
    browser.set_window_size(1200, height + 120)
    shot = np.asarray(Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB"))
    assert shot.shape[0] >= min(height, 2000) and shot.shape[1] >= 800
    assert shot.astype(float).std() > 20  # not a blank page
    colours = np.unique(shot.reshape(-1, 3)[::7], axis=0)
    assert len(colours) > 50  # text, section boxes, images: many colours
    for top in range(0, height - 400, 400):  # no long blank stretch anywhere down the page
        assert shot[top:top + 400].astype(float).std() > 5, f"blank band at y={top}"
