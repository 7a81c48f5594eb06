"""Headless Chromium for tests (Debian's `chromium` + `chromium-driver`, driven by selenium), or a skip saying why.

Screenshots go to the test's tmp directory; with GANLATENT_SCREENSHOT_DIR=docs they are also copied there (how the
README's pictures are made: `GANLATENT_SCREENSHOT_DIR=docs pytest tests/test_browser.py -n 0`).
"""
import os
import shutil
import time

import pytest

INSTALL_HINT = "apt-get install -y chromium chromium-driver && pip install selenium (.ci/run does this)"


def chromium_paths() -> tuple[str, str]:
  """(browser, driver) executables, or pytest.skip naming what is missing."""
  browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
  driver = shutil.which("chromedriver")
  if not browser or not driver:
    pytest.skip(f"no headless Chromium here ({'chromium' if not browser else 'chromedriver'} not on PATH): "
                f"{INSTALL_HINT}")
  return browser, driver


def start_chromium(width: int = 1200, height: int = 1400):
  browser, driver = chromium_paths()
  webdriver = pytest.importorskip("selenium.webdriver", reason=f"selenium is not installed: {INSTALL_HINT}")
  from selenium.webdriver.chrome.options import Options
  from selenium.webdriver.chrome.service import Service
  options = Options()
  options.binary_location = browser
  for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                   f"--window-size={width},{height}", "--allow-file-access-from-files"):
    options.add_argument(argument)
  return webdriver.Chrome(options=options, service=Service(driver))


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.1, what: str = "condition"):
  deadline = time.monotonic() + timeout
  while True:
    value = predicate()
    if value:
      return value
    if time.monotonic() > deadline:
      raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")
    time.sleep(interval)


def screenshot(driver, tmp_path, name: str, full_page: bool = True) -> str:
  """Saves a PNG of the page (whole page height when `full_page`); copied to $GANLATENT_SCREENSHOT_DIR if set."""
  driver.execute_script("window.scrollTo(0, 0)")
  if full_page:
    height = driver.execute_script("return document.documentElement.scrollHeight")
    width = driver.execute_script("return window.innerWidth")
    driver.set_window_size(max(width, 800), min(int(height) + 120, 6000))
  path = os.path.join(tmp_path, name)
  driver.save_screenshot(path)
  target = os.environ.get("GANLATENT_SCREENSHOT_DIR")
  if target:
    os.makedirs(target, exist_ok=True)
    shutil.copy(path, os.path.join(target, name))
  return path


UNDECODED_IMAGES_JS = """
return Array.from(document.images).filter((img) => !(img.complete && img.naturalWidth > 0))
  .map((img) => img.getAttribute('src').slice(0, 80));
"""

IMAGE_HASH_JS = """
const img = document.getElementById(arguments[0]);
const canvas = document.createElement('canvas');
canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
const context = canvas.getContext('2d');
context.drawImage(img, 0, 0);
const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
let hash = 0;
for (let i = 0; i < data.length; i++) hash = (hash * 31 + data[i]) >>> 0;
return [canvas.width, hash];
"""
