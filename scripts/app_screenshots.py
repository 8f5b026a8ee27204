"""Screenshots of every view of ``tinydiffusion app``, made by the app itself in headless Chromium.

    python scripts/app_screenshots.py IMAGE_RUN POINTS_RUN [TRAINING_RUN] [--out docs/images]

IMAGE_RUN is a trained image run (the quickstart), POINTS_RUN a 2-D run (the S-curve recipe) and
TRAINING_RUN a run to show in the Training view (default: IMAGE_RUN; the README's is a quickstart run
that was training at the time). Writes ``app-forward.png``, ``app-sample.png``, ``app-compare.png``, ``app-training.png``
and ``app-2d.png``. Needs /usr/bin/chromium, /usr/bin/chromedriver and selenium.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from tinydiffusion.app.launch import start
from tinydiffusion.app.runs import RunRegistry

REPO = Path(__file__).resolve().parents[1]
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars")
WIDTH = 1400


def wait_for(condition: Callable[[], object], timeout: float = 600) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.3)
    raise TimeoutError("the page did not show what was expected")


def loaded(driver: webdriver.Chrome, elem_id: str) -> str | None:
    """The src of the image in element ``elem_id`` once it has loaded."""
    return driver.execute_script(
        f"const im = document.querySelector('#{elem_id} img'); "
        "return im && im.complete && im.naturalWidth > 0 ? im.src : null;")


def move_slider(driver: webdriver.Chrome, elem_id: str, value: int) -> None:
    """Set a Gradio slider as a user dragging it would (an input event on its range input)."""
    driver.execute_script(
        f"const r = document.querySelector('#{elem_id} input[type=range]'); r.value = {value}; "
        "r.dispatchEvent(new Event('input', {bubbles: true})); r.dispatchEvent(new Event('change', {bubbles: true}));")


def choose(driver: webdriver.Chrome, elem_id: str, option: str) -> None:
    """Pick ``option`` in the dropdown ``elem_id``."""
    box = driver.find_element(By.CSS_SELECTOR, f"#{elem_id} input")
    if box.get_attribute("value") == option:
        return
    box.click()
    item = f"#{elem_id} li[role=option][aria-label='{option}']"
    items = wait_for(lambda: driver.find_elements(By.CSS_SELECTOR, item))
    items[0].click()


def tab(driver: webdriver.Chrome, label: str) -> None:
    driver.find_element(By.XPATH, f"//button[@role='tab'][normalize-space()='{label}']").click()
    time.sleep(1)


def shoot(driver: webdriver.Chrome, path: Path) -> None:
    """The whole page, as tall as it is, at the window's width."""
    driver.execute_script("window.scrollTo(0, 0);")
    page_height = "return document.documentElement.scrollHeight;"
    previous, height = -1, driver.execute_script(page_height)
    while height != previous:  # the page may grow once the window is as tall as its content
        driver.set_window_size(WIDTH, height + 120)
        time.sleep(1)
        previous, height = height, driver.execute_script(page_height)
    shot = Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB")
    shot.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)  # a page has few colours
    driver.set_window_size(WIDTH, 1000)
    print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("image_run")
    parser.add_argument("points_run")
    parser.add_argument("training_run", nargs="?")
    parser.add_argument("--out", default=str(REPO / "docs" / "images"))
    args = parser.parse_args()
    out = Path(args.out)
    paths = [Path(args.image_run), Path(args.points_run)]
    if args.training_run:
        paths.append(Path(args.training_run))
    registry = RunRegistry(paths, "cpu")
    image_run, points_run = list(registry.runs)[:2]
    training_run = list(registry.runs)[2] if args.training_run else image_run
    server = start(registry, quiet=True)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={WIDTH},1000")
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get(server.url)
        first = wait_for(lambda: loaded(driver, "forward-chain"))
        move_slider(driver, "forward-t", 40)
        wait_for(lambda: loaded(driver, "forward-chain") not in (None, first))
        shoot(driver, out / "app-forward.png")

        tab(driver, "Sample")
        choose(driver, "sample-run", image_run)
        driver.find_element(By.ID, "sample-button").click()
        wait_for(lambda: loaded(driver, "sample-grid"))
        move_slider(driver, "sample-step", 8)
        time.sleep(2)
        shoot(driver, out / "app-sample.png")

        tab(driver, "Compare samplers")
        driver.find_element(By.ID, "compare-button").click()
        wait_for(lambda: loaded(driver, "compare-picture"))
        shoot(driver, out / "app-compare.png")

        tab(driver, "Training")
        choose(driver, "training-run", training_run)
        wait_for(lambda: loaded(driver, "training-loss") and loaded(driver, "training-previews"))
        time.sleep(3)
        shoot(driver, out / "app-training.png")

        tab(driver, "2-D")
        choose(driver, "points-run", points_run)
        first = wait_for(lambda: loaded(driver, "points-forward"))
        move_slider(driver, "points-t", 1)
        wait_for(lambda: loaded(driver, "points-forward") not in (None, first))
        driver.find_element(By.ID, "points-button").click()
        wait_for(lambda: loaded(driver, "points-reverse"))  # the samples: the slider at the last step
        shoot(driver, out / "app-2d.png")
    finally:
        driver.quit()
        server.close()


if __name__ == "__main__":
    main()
