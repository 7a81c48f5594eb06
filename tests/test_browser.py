"""In a real browser (headless Chromium): the report loads with every image decoded and its metrics table; in the
explorer, moving a slider changes the displayed image. Skipped, with the reason, where no Chromium exists."""
import pathlib
import threading

import jax
import pytest

from browser import IMAGE_HASH_JS, UNDECODED_IMAGES_JS, screenshot, start_chromium, wait_for
from ganlatent_jax import directions as dirs
from ganlatent_jax import explore
from ganlatent_jax.generators import stylegan2
from ganlatent_jax.viz import report
from test_viz_report import _workdir


@pytest.fixture(scope="module")
def chromium():
  driver = start_chromium()
  yield driver
  driver.quit()


def check_report_in_browser(driver, workdir, tmp_path, shot_name="report.png", full_page=True):
  """The report of `workdir` opened from disk: every image decoded, the metrics table has rows; a screenshot."""
  driver.get(pathlib.Path(workdir, report.REPORT_FILE).resolve().as_uri())
  wait_for(lambda: driver.execute_script("return document.readyState") == "complete", what="the page to load")
  wait_for(lambda: driver.execute_script(UNDECODED_IMAGES_JS) == [], timeout=30,
           what=lambda: f"every image to decode (not decoded: {driver.execute_script(UNDECODED_IMAGES_JS)})")
  assert driver.execute_script("return document.images.length") >= 1
  rows = driver.execute_script("return document.querySelectorAll('table.metrics tbody tr').length")
  assert rows >= 1, "no metrics table"
  return screenshot(driver, tmp_path, shot_name, full_page=full_page)


def test_report_loads_with_every_image_decoded(chromium, tmp_path):
  workdir = _workdir(tmp_path / "run")
  report.write_report(workdir)
  assert pathlib.Path(check_report_in_browser(chromium, workdir, tmp_path, "report_synthetic.png")).exists()


def test_moving_a_slider_changes_the_displayed_image(chromium, tmp_path):
  config = stylegan2.make_config(16, style_dim=8, n_mlp=2, channels=stylegan2.constant_channels(16, 8))
  gen = stylegan2.build(config, stylegan2.init_variables(config, jax.random.key(0)), "tiny")
  explorer = explore.Explorer(gen, dirs.random(8, 3, jax.random.key(1), space="w"))
  server = explore.make_server(explorer, 0, title="tiny", span=3.0)
  threading.Thread(target=server.serve_forever, daemon=True).start()
  try:
    chromium.get(f"http://127.0.0.1:{server.server_address[1]}/")

    def shown(query_part):
      return chromium.execute_script(
          "const img = document.getElementById('image');"
          "return img.complete && img.naturalWidth > 0 && (img.dataset.query || '').includes(arguments[0]);",
          query_part)

    wait_for(lambda: shown("c=0%2C0%2C0"), what="the first image")
    width, before = chromium.execute_script(IMAGE_HASH_JS, "image")
    assert width == 16
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    slider = chromium.find_element(By.ID, "d1")
    slider.send_keys(*[Keys.ARROW_RIGHT] * 10)  # a user dragging direction 1 to +1.0
    wait_for(lambda: shown("c=0%2C1%2C0"), what="the image of the moved slider")
    _, after = chromium.execute_script(IMAGE_HASH_JS, "image")
    assert after != before
    assert chromium.find_element(By.ID, "d1_value").text == "1"
    screenshot(chromium, tmp_path, "explorer_tiny.png", full_page=False)
  finally:
    server.shutdown()
    server.server_close()
