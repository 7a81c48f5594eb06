"""The main command as a person sees it, on the quick SRE config: a quiet terminal with progress for the evaluation
and a final summary, and a report.html that loads in a real browser with every image decoded."""
import os
import pathlib
import re
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
# What the issue saw on the terminal before: orbax's INFO lines, jax's backend probing.
THIRD_PARTY_NOISE = ("orbax", "CheckpointManager", "_NonBlockingMetadataStore", "Scheduling D2H", "libtpu",
                     "Unable to initialize backend", "checkpoint_manager.py", "xla_bridge.py")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
  workdir = tmp_path_factory.mktemp("sre_quick") / "run"
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  result = subprocess.run([sys.executable, "-m", "ganlatent_jax.main", "--config=configs/sre_3dshapes.py:quick",
                           f"--workdir={workdir}"], capture_output=True, text=True, env=env, timeout=1800,
                          cwd=REPO)
  assert result.returncode == 0, result.stderr[-4000:]
  return workdir, result


@pytest.mark.slow
def test_terminal_is_quiet_shows_evaluation_progress_and_a_summary(quick_run):
  workdir, result = quick_run
  terminal = result.stdout + result.stderr
  noisy = [line for line in terminal.splitlines() if any(word in line for word in THIRD_PARTY_NOISE)]
  assert noisy == [], noisy
  assert re.search(r"encoder training: 100%.*\d+/\d+ \[", result.stderr), result.stderr[-2000:]  # a finished bar
  assert "rendering 64 images" in result.stderr
  for line in (f"outputs: {workdir}", f"report:  {workdir / 'report.html'}", "MIG: ", "(init → refined)",
               "wall time:", "  training: "):
    assert line in result.stdout, result.stdout


@pytest.mark.slow
def test_report_of_the_quick_run_in_a_browser(quick_run, tmp_path):
  from test_browser import check_report_in_browser
  from browser import start_chromium
  workdir, _ = quick_run
  assert (workdir / "report.html").exists()
  driver = start_chromium()
  try:
    check_report_in_browser(driver, workdir, tmp_path, "report.png", full_page=False)
  finally:
    driver.quit()


@pytest.mark.slow
def test_explorer_command_on_the_quick_run(quick_run, tmp_path):
  """`python -m ganlatent_jax.explore --workdir=W` serves the run's directions; a slider move changes the image."""
  from browser import IMAGE_HASH_JS, screenshot, start_chromium, wait_for
  from selenium.webdriver.common.by import By
  from selenium.webdriver.common.keys import Keys
  workdir, _ = quick_run
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  server = subprocess.Popen([sys.executable, "-m", "ganlatent_jax.explore", f"--workdir={workdir}", "--port=0"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=REPO)
  driver = None
  try:
    line = server.stdout.readline()  # printed once the generator is compiled
    url = re.search(r"http://127\.0\.0\.1:\d+/", line)
    assert url, line
    driver = start_chromium(1000, 640)
    driver.get(url.group(0))

    def shown(part):
      return driver.execute_script("const img = document.getElementById('image');"
                                   "return img.complete && img.naturalWidth > 0 && "
                                   "(img.dataset.query || '').includes(arguments[0]);", part)

    wait_for(lambda: shown("c=0%2C0%2C0"), timeout=120, what="the first image")
    _, before = driver.execute_script(IMAGE_HASH_JS, "image")
    driver.find_element(By.ID, "d0").send_keys(*[Keys.ARROW_RIGHT] * 20)
    wait_for(lambda: shown("c=2%2C0%2C0"), timeout=120, what="the image of the moved slider")
    _, after = driver.execute_script(IMAGE_HASH_JS, "image")
    assert after != before
    screenshot(driver, tmp_path, "explorer.png", full_page=False)
  finally:
    if driver is not None:
      driver.quit()
    server.terminate()
    server.wait(timeout=60)
