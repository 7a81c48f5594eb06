"""report.html after every config's quick variant, as `python -m ganlatent_jax.main` leaves it (train, then
`viz.report.write_report` and the summary) or, for a generator-metrics config, as `python -m ganlatent_jax.evaluate`
does: the page parses with balanced tags, links and images only files of the workdir (or embedded data), and shows
every score of metrics.json in its metrics table. In a real browser too, where Chromium exists."""
import html.parser
import json
import pathlib
import urllib.parse
import warnings

import pytest
from conftest import fixture_path
from test_configs import CONFIGS, FIXTURES, NAMES, data_context

from ganlatent_jax import cli, console, methods
from ganlatent_jax import evaluate as evaluate_lib
from ganlatent_jax.viz import report

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class _Page(html.parser.HTMLParser):
  """A strict reading: unbalanced or misnested tags are errors; collects sources, links and metrics-table cells."""

  def __init__(self):
    super().__init__()
    self.open, self.errors, self.sources, self.links, self.metric_rows = [], [], [], [], []
    self._metrics_depth, self._row, self._cell = None, None, None

  def handle_starttag(self, tag, attrs):
    attrs = dict(attrs)
    if tag in ("img", "script", "iframe", "source") and "src" in attrs:
      self.sources.append(attrs["src"])
    if tag in ("a", "link") and "href" in attrs:
      self.links.append(attrs["href"])
    if tag in VOID:
      return
    self.open.append(tag)
    if tag == "table" and "metrics" in (attrs.get("class") or "").split():
      self._metrics_depth = len(self.open)
    elif tag == "tr" and self._metrics_depth is not None:
      self._row = []
    elif tag in ("td", "th") and self._row is not None:
      self._cell = ""

  def handle_endtag(self, tag):
    if tag in VOID:
      return
    if not self.open or self.open[-1] != tag:
      self.errors.append(f"</{tag}> closes {self.open[-1:] or 'nothing'} (open: {self.open[-5:]})")
      return
    if tag in ("td", "th") and self._cell is not None:
      self._row.append(self._cell.strip())
      self._cell = None
    elif tag == "tr" and self._row is not None:
      self.metric_rows.append(self._row)
      self._row = None
    elif tag == "table" and self._metrics_depth == len(self.open):
      self._metrics_depth = None
    self.open.pop()

  def handle_data(self, data):
    if self._cell is not None:
      self._cell += data


def _run_quick(name: str, workdir: pathlib.Path) -> None:
  """The quick variant with the test fixtures test_configs substitutes, run the way its command runs it."""
  config = cli.load_config(str(CONFIGS / f"{name}.py") + ":quick")
  for key, relative in FIXTURES.get(name, {}).items():
    section, _, leaf = key.rpartition(".")
    (config[section] if section else config)[leaf] = str(fixture_path(relative))
  if config.method:   # ganlatent_jax.main: train (which evaluates when configured), then the report and summary
    with data_context(name):
      methods.get(config.method).train(config, str(workdir))
    report.write_report(workdir, config)   # as main.train does (evaluate.finish): with the config
    assert f"report:  {workdir / report.REPORT_FILE}" in console.summary(str(workdir))
  else:               # ganlatent_jax.evaluate on a generator-metrics config
    evaluate_lib.evaluate(config, str(workdir))
    evaluate_lib.finish(str(workdir), config)


def _local_file(workdir: pathlib.Path, reference: str) -> pathlib.Path:
  parsed = urllib.parse.urlparse(reference)
  assert not parsed.scheme and not parsed.netloc and not reference.startswith("/"), \
      f"{reference!r} is not a relative link: the report must work offline and when the workdir moves"
  path = (workdir / urllib.parse.unquote(parsed.path)).resolve()
  assert path.is_relative_to(workdir.resolve()), f"{reference!r} leaves the workdir"
  assert path.exists(), f"{reference!r} links a file that does not exist"
  return path


def _score_leaves(node, prefix=""):
  """(row key, value) of every number in a block of metrics.json, nested keys joined by '/' (read independently of
  the report's own code)."""
  for key, value in node.items():
    if isinstance(value, dict):
      if key not in report.SETTINGS_SECTIONS:
        yield from _score_leaves(value, f"{prefix}{key}/")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
      yield prefix + key, value


def expected_scores(metrics):
  """(row key, value) the metrics table must show: every number of each top-level block (and of the top level)
  that holds a float — whatever nested blocks an evaluation writes."""
  top = {k: v for k, v in metrics.items() if not isinstance(v, dict)}
  blocks = [top] + [v for k, v in metrics.items() if isinstance(v, dict) and k not in report.SETTINGS_SECTIONS]
  for block in blocks:
    leaves = list(_score_leaves(block))
    if any(isinstance(value, float) for _, value in leaves):
      yield from leaves


def check_report(workdir: pathlib.Path) -> _Page:
  path = workdir / report.REPORT_FILE
  assert path.is_file(), "no report.html in the workdir"
  text = path.read_text()
  page = _Page()
  page.feed(text)
  page.close()
  assert not page.errors and page.open == [], (page.errors, page.open)
  assert text.startswith("<!DOCTYPE html>") and "<h1>" in text
  for reference in page.sources + page.links:
    if not reference.startswith("data:image/png;base64,"):
      _local_file(workdir, reference)
  assert "config.json" in page.links
  metrics_path = workdir / "metrics.json"
  if metrics_path.exists():
    metrics = json.loads(metrics_path.read_text())
    expected = list(expected_scores(metrics))
    evaluation = metrics.get("evaluation", {})
    # a method's metrics.json holds its evaluation config ({"metrics": [...], ...}); the generator-metrics
    # command's (`ganlatent_jax.evaluate`) holds the list of metrics it ran
    declared = list((evaluation if isinstance(evaluation, list) else evaluation.get("metrics", None)) or ())
    if not expected and not declared:
      # An evaluation without a score by design (UD-GAN-G on CelebA: no factor labels, only the per-knob list
      # knob_effect): no metrics table, and the file's contents on the page.
      assert "<summary>metrics.json</summary>" in text, "metrics.json is not shown on the page"
      return page
    assert page.metric_rows, "metrics.json exists but the page has no metrics table"
    rows = {}
    for row in page.metric_rows:
      rows.setdefault(row[0], set()).update(row[1:])
    assert expected, f"metrics.json holds no score although its evaluation asks for {declared}"
    for key, value in expected:
      label = report.score_label(key)
      assert label in rows, f"{key} of metrics.json has no row in the metrics table"
      assert report.format_number(float(value)) in rows[label], (key, value, rows[label])
  return page


def _browser_or_none():
  import browser
  try:
    return browser.start_chromium()
  except pytest.skip.Exception as reason:
    warnings.warn(f"report not checked in a browser: {reason}")
    return None


@pytest.fixture(scope="module")
def chromium():
  driver = _browser_or_none()
  yield driver
  if driver is not None:
    driver.quit()


def check_in_browser(driver, workdir: pathlib.Path, has_metrics: bool) -> None:
  from browser import UNDECODED_IMAGES_JS, wait_for
  driver.get((workdir / report.REPORT_FILE).resolve().as_uri())
  wait_for(lambda: driver.execute_script("return document.readyState") == "complete", what="the page to load")
  wait_for(lambda: driver.execute_script(UNDECODED_IMAGES_JS) == [], timeout=30,
           what=lambda: f"every image to decode (not decoded: {driver.execute_script(UNDECODED_IMAGES_JS)})")
  rows = driver.execute_script("return document.querySelectorAll('table.metrics tbody tr').length")
  assert rows >= 1 or not has_metrics, "metrics.json exists but the browser shows no metrics table"


@pytest.mark.slow   # each quick run takes 30–300 s on two shared cores
@pytest.mark.parametrize("name", NAMES)
def test_report_after_the_quick_config(name, tmp_path, chromium):
  workdir = tmp_path / "run"
  _run_quick(name, workdir)
  page = check_report(workdir)
  if chromium is not None:
    check_in_browser(chromium, workdir, bool(page.metric_rows))


def test_the_checks_pass_a_good_report_and_catch_a_missing_file_or_score(tmp_path):
  from test_viz_report import _workdir
  workdir = _workdir(tmp_path / "run")
  report.write_report(workdir)
  page = check_report(workdir)
  assert ["MIG", "0.125", "0.22 ± 0.01", "0.375", "0.45 ± 0.06", "+0.25"] in page.metric_rows
  (workdir / "directions.npz").unlink()   # linked by the report written before
  with pytest.raises(AssertionError, match="'directions.npz' links a file that does not exist"):
    check_report(workdir)
  report.write_report(workdir)
  metrics = json.loads((workdir / "metrics.json").read_text())
  metrics["directions"]["generated"] = {"mig": 0.5}
  (workdir / "metrics.json").write_text(json.dumps(metrics))   # the report is now stale: a score is missing
  with pytest.raises(AssertionError, match="generated/mig of metrics.json has no row"):
    check_report(workdir)
  bad = _Page()
  bad.feed("<div><table></div>")
  assert bad.errors
