"""A run's workdir on GCS (gs://bucket/path), issue 20: every workdir file goes through ganlatent_jax.io (etils.epath /
fsspec) and orbax's checkpoints through tensorstore, and none of it needs the network here.

  * io's functions on gs:// paths backed by an in-memory fsspec filesystem registered for the 'gs'/'gcs' protocols
    (what etils.epath's fsspec backend opens for gs:// when TensorFlow is not installed);
  * the real clients against a local GCS emulator (gcp-storage-emulator): gcsfs (STORAGE_EMULATOR_HOST) and
    tensorstore's gcs driver (TENSORSTORE_GCS_HTTP_URL, a fixed test token) talk to the same fake bucket, so orbax's
    checkpoints and the run's other files land where a pod's would.
"""
import json
import logging
import os
import subprocess
import sys
import urllib.request

import numpy as np
import pytest

from conftest import free_port
from ganlatent_jax import io

fsspec = pytest.importorskip("fsspec")
import fsspec.registry  # noqa: E402  (fsspec.registry the attribute is a read-only view; the module has _registry)
from fsspec.implementations.memory import MemoryFileSystem  # noqa: E402

_FSSPEC_REGISTRY = sys.modules["fsspec.registry"]._registry

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUCKET = "test-bucket"


class _MemoryGCS(MemoryFileSystem):
  """An in-memory 'gs://' filesystem: keys are 'bucket/path' like gcsfs's; accepts gcsfs's finalize_on_close."""
  protocol = ("gs", "gcs")
  root_marker = ""

  def __init__(self, *args, finalize_on_close=False, **kwargs):
    super().__init__(*args, **kwargs)

  @classmethod
  def _strip_protocol(cls, path):
    path = fsspec.utils.stringify_path(path)
    for prefix in ("gs://", "gcs://"):
      path = path.removeprefix(prefix)
    return path.strip("/")


def _clear_epath_caches():
  from etils.epath import backend, gpath
  backend._FileSystemSpecBackend._get_filesystem.cache_clear()
  gpath._is_tf_installed.cache_clear()


@pytest.fixture
def memory_gcs(monkeypatch):
  """The 'gs'/'gcs' protocols served from a fresh in-memory store (returned: {key: file}); undone afterwards."""
  fs_class = type("MemoryGCS", (_MemoryGCS,), {"store": {}, "pseudo_dirs": [""]})
  monkeypatch.setenv("EPATH_USE_TF", "false")   # epath would prefer tf.io.gfile if TensorFlow were installed
  for protocol in ("gs", "gcs"):
    monkeypatch.setitem(_FSSPEC_REGISTRY, protocol, fs_class)
  _clear_epath_caches()
  yield fs_class.store
  _clear_epath_caches()


def test_writes_and_reads_on_gs(memory_gcs):
  run = f"gs://{BUCKET}/run"
  io.makedirs("gs://other-bucket/run/images")   # nothing to make on an object store (and never a bucket)
  assert memory_gcs == {}
  io.write_text(run + "/images/t.png", "png")
  io.write_text(run + "/notes.txt", "héllo")
  io.write_json(run + "/metrics.json", {"mig": np.float32(0.25), "per_factor": np.arange(3)})
  with io.open_atomic(run + "/directions.npz") as f:   # np.savez seeks: the local staging file allows it
    np.savez(f, matrix=np.eye(2))
  io.save_variables(run + "/ranker.msgpack", {"w": np.arange(4.0)})

  assert sorted(memory_gcs) == [f"{BUCKET}/run/{name}" for name in
                                ("directions.npz", "images/t.png", "metrics.json", "notes.txt", "ranker.msgpack")]
  assert io.read_text(run + "/notes.txt") == "héllo"
  assert json.loads(io.read_text(run + "/metrics.json")) == {"mig": 0.25, "per_factor": [0, 1, 2]}
  with io.open_file(run + "/directions.npz", "rb") as f, np.load(f) as data:
    np.testing.assert_array_equal(data["matrix"], np.eye(2))
  np.testing.assert_array_equal(io.load_variables(run + "/ranker.msgpack")["w"], np.arange(4.0))
  assert io.exists(run + "/notes.txt") and not io.exists(run + "/missing.txt")
  assert io.isdir(run) and not io.isdir(run + "/notes.txt") and io.isfile(run + "/notes.txt")
  assert sorted(io.listdir(run)) == ["directions.npz", "images", "metrics.json", "notes.txt", "ranker.msgpack"]
  assert io.glob(run, "*.json") == [run + "/metrics.json"]
  assert io.getsize(run + "/notes.txt") == len("héllo".encode())
  with pytest.raises(FileNotFoundError, match="missing"):
    io.listdir(run + "/missing")
  with pytest.raises(ValueError, match="open_atomic"):
    io.open_file(run + "/notes.txt", "w")


def test_files_under_lists_sizes_and_skips_a_top_level_directory(memory_gcs, tmp_path):
  for root in (f"gs://{BUCKET}/run", str(tmp_path / "run")):   # the same answer locally and on gs://
    io.write_bytes(f"{root}/a.bin", b"123")
    io.write_bytes(f"{root}/images/t.png", b"12345")
    io.write_bytes(f"{root}/checkpoints/2/data", b"x")
    assert io.files_under(root, skip=("checkpoints",)) == [("a.bin", 3), ("images/t.png", 5)], root
    assert len(io.files_under(root)) == 3
    assert io.files_under(root + "/nothing_here") == []


def test_failed_write_leaves_the_old_object(memory_gcs):
  path = f"gs://{BUCKET}/run/metrics.json"
  io.write_text(path, "old")
  with pytest.raises(RuntimeError, match="mid-write"):
    with io.open_atomic(path, "w") as f:
      f.write("half")
      raise RuntimeError("crash mid-write")
  assert io.read_text(path) == "old"
  assert sorted(memory_gcs) == [f"{BUCKET}/run/metrics.json"]


def test_remove_rmtree_rename_and_staging_directory_on_gs(memory_gcs):
  run = f"gs://{BUCKET}/run"
  io.write_text(run + "/checkpoints/7/data", "step 7")
  io.rename(run + "/checkpoints/7", run + "/checkpoints_unreadable/7")   # the target prefix does not exist yet
  assert io.read_text(run + "/checkpoints_unreadable/7/data") == "step 7"
  assert not io.exists(run + "/checkpoints/7/data")
  io.rmtree(run + "/checkpoints_unreadable")
  io.rmtree(run + "/never_written")   # nothing to delete is not an error
  io.write_text(run + "/a.txt", "a")
  io.remove(run + "/a.txt")
  io.remove(run + "/a.txt", missing_ok=True)
  with pytest.raises(FileNotFoundError):
    io.remove(run + "/a.txt")

  io.write_text(run + "/generator/stale.json", "{}")
  with pytest.raises(RuntimeError):
    with io.staging_directory(run + "/generator") as tmp:
      (tmp / "generator.json").write_text("{}")
      raise RuntimeError("crash")
  assert sorted(memory_gcs) == [f"{BUCKET}/run/generator/stale.json"]   # a failed staging uploads nothing
  with io.staging_directory(run + "/generator") as tmp:
    (tmp / "generator.json").write_text('{"family": "dcgan"}')
    (tmp / "sub").mkdir()
    (tmp / "sub" / "variables.msgpack").write_bytes(b"\x80")
  assert sorted(memory_gcs) == [f"{BUCKET}/run/generator/generator.json",
                                f"{BUCKET}/run/generator/sub/variables.msgpack"]   # the old contents replaced


def test_local_paths_are_unchanged(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  assert io.absolute("run") == str(tmp_path / "run")
  assert io.absolute("gs://b/run") == "gs://b/run"   # os.path.abspath would make '<cwd>/gs:/b/run'
  assert not io.is_remote(tmp_path) and io.is_remote("gs://b/run")
  io.write_text("run/x.txt", "x")   # the local atomic path: temp file + rename, nothing left beside it
  assert os.listdir(tmp_path / "run") == ["x.txt"]


def test_directions_metric_writer_and_report_on_gs(memory_gcs):
  from ganlatent_jax import console
  from ganlatent_jax.directions.base import Directions
  from ganlatent_jax.training.writer import MetricWriter
  from ganlatent_jax.training import events
  from ganlatent_jax.viz import report
  run = f"gs://{BUCKET}/run"
  directions = Directions(np.eye(3, dtype=np.float32)[:, :2], "z", meta={"method": "test"})
  directions.save(run + "/directions.npz")
  loaded = Directions.load(run + "/directions.npz")
  np.testing.assert_array_equal(loaded.matrix, directions.matrix)
  assert loaded.meta == {"method": "test"}

  writer = MetricWriter(run, enabled=True)
  writer.scalars(1, {"loss": 2.0})
  writer.flush()   # the loop flushes at each checkpoint: the event file is uploaded whole
  assert events.read_scalars(run) == {"loss": [(1, 2.0)]}
  writer.scalars(2, {"loss": 1.5})
  writer.close()
  assert events.read_scalars(run) == {"loss": [(1, 2.0), (2, 1.5)]}
  assert len(io.glob(run, "events.out.tfevents.*")) == 2   # one file per flush: each event uploaded once

  io.write_json(run + "/metrics.json", {"directions": {"mig": 0.5}})
  io.write_text(run + "/checkpoints/2/data", "not listed")
  path = report.write_report(run, {"method": "test", "steps": 2})
  assert path == run + "/report.html"
  page = io.read_text(path)
  for text in ("test run — run", "gs://test-bucket/run", "directions.npz", "step 2 of 2", "steps 2"):
    assert text in page, text
  assert "not listed" not in page
  assert json.loads(io.read_text(run + "/config.json")) == {"method": "test", "steps": 2}
  assert console.summary(run, phases=[]).splitlines()[:3] == [
      f"outputs: {run}", f"report:  {run}/report.html", "results:"]


def test_check_filesystem_names_the_workdir_and_the_extra(monkeypatch):
  import importlib.util
  io.check_filesystem("/tmp/run")   # local: nothing to check
  real_find_spec = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gcsfs" else
                      real_find_spec(name, *a))
  with pytest.raises(ValueError, match=r"--workdir=gs://b/run: .*gcsfs.*pip install 'ganlatent_jax\[gcs\]'"):
    io.check_filesystem("gs://b/run")
  with pytest.raises(ValueError, match=r"--out=s3://b/run: s3:// is not supported"):
    io.check_filesystem("s3://b/run", what="--out")


def test_main_without_gcsfs_fails_at_start_naming_the_workdir():
  """The command itself, in a process where gcsfs cannot be found: exit 1 before jax starts, with the fix."""
  hide_gcsfs = ("import importlib.util as u, runpy, sys; f = u.find_spec; "
                "u.find_spec = lambda n, *a: None if n == 'gcsfs' else f(n, *a); "
                "sys.argv = ['main', '--config=configs/sre_3dshapes.py:quick', '--workdir=gs://my-bucket/run']; "
                "runpy.run_module('ganlatent_jax.main', run_name='__main__')")
  result = subprocess.run([sys.executable, "-c", hide_gcsfs], capture_output=True, text=True, cwd=ROOT, timeout=300)
  assert result.returncode == 1, result.stderr[-3000:]
  assert "--workdir=gs://my-bucket/run" in result.stderr and "pip install 'ganlatent_jax[gcs]'" in result.stderr
  assert "training" not in result.stderr


# ---------------------------------------------------------------------------------------------------------------
# The real clients (gcsfs, tensorstore through orbax) against a local GCS emulator.


def _fill_emulator_gaps(server_lib, patch):
  """Two things GCS does that gcp-storage-emulator 2026.7.19 does not, which the clients here rely on:
    * media downloads carry x-goog-generation / x-goog-metageneration: tensorstore reads an object's generation from
      that header (for its conditional writes); without it orbax's OCDBT manifest read fails with 'Malformed
      StorageGeneration' as soon as a checkpoint has a few dozen arrays (the emulator sets them in the JSON only);
    * the objects.move API (POST .../o/SRC/moveTo/o/DST): gcsfs's mv tries it first and, on the emulator's 501,
      retries with backoff for ~30 s before it falls back to copy + delete. Served here as copy + delete."""
  from http import HTTPStatus

  from gcp_storage_emulator.handlers import objects

  def move(request, response, storage, *args, **kwargs):
    request.params["dest_bucket_name"] = request.params["bucket_name"]
    objects.copy(request, response, storage)
    if response.status == HTTPStatus.OK:
      objects.delete(request, response, storage)

  move_route = (rf"^{server_lib.settings.API_ENDPOINT}/b/(?P<bucket_name>[-.\w]+)/o/(?P<object_id>.*[^/]+)"
                rf"/moveTo/o/(?P<dest_object_id>.*[^/]+)$", {server_lib.POST: move})
  patch.setattr(server_lib, "HANDLERS", (move_route, *server_lib.HANDLERS))   # before the object route matches it
  original = objects.download

  def download(request, response, storage, *args, **kwargs):
    original(request, response, storage, *args, **kwargs)
    if response.status.value in (200, 206):
      obj = storage.get_file_obj(request.params["bucket_name"], request.params["object_id"])
      response["x-goog-generation"] = obj["generation"]
      response["x-goog-metageneration"] = obj["metageneration"]

  patch.setattr(objects, "download", download)   # objects.get(alt=media) calls it by its module name
  for _, handlers in server_lib.HANDLERS:        # the routes hold the function itself
    for method, handler in list(handlers.items()):
      if handler is original:
        patch.setitem(handlers, method, download)


@pytest.fixture(scope="module")
def gcs_emulator():
  """A GCS emulator on localhost with an empty bucket BUCKET; gcsfs and tensorstore pointed at it for the module.
  Returns its URL. Tensorstore reads its endpoint once per process, so one emulator serves the whole module."""
  pytest.importorskip("gcsfs")
  server_lib = pytest.importorskip("gcp_storage_emulator.server")
  logging.getLogger("gcp_storage_emulator").setLevel(logging.CRITICAL)   # 'Resource not found' for every probe
  logging.getLogger("gcsfs").setLevel(logging.ERROR)   # 'Could not determine bucket type' (no credentials here)
  with pytest.MonkeyPatch.context() as patch:
    _fill_emulator_gaps(server_lib, patch)
    port = free_port()
    server = server_lib.create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    server.start()
    url = f"http://127.0.0.1:{port}"
    patch.setenv("STORAGE_EMULATOR_HOST", url)         # gcsfs (and google-cloud-storage)
    patch.setenv("TENSORSTORE_GCS_HTTP_URL", url)      # tensorstore's gcs driver, i.e. orbax's array data
    patch.setenv("GOOGLE_AUTH_TOKEN_FOR_TESTING", "emulator")   # tensorstore: a fixed token, no credentials lookup
    patch.setenv("NO_GCE_CHECK", "true")               # google-auth: do not probe a metadata server
    patch.setenv("EPATH_USE_TF", "false")
    _clear_epath_caches()
    import gcsfs
    gcsfs.GCSFileSystem.clear_instance_cache()
    try:
      yield url
    finally:
      _clear_epath_caches()
      gcsfs.GCSFileSystem.clear_instance_cache()
      server.stop()


def _objects(url: str, prefix: str) -> list[str]:
  """The bucket's object names under `prefix`, asked of the emulator's JSON API directly (not through our code)."""
  names, token = [], ""
  while True:
    query = f"{url}/storage/v1/b/{BUCKET}/o?prefix={prefix}" + (f"&pageToken={token}" if token else "")
    with urllib.request.urlopen(query, timeout=30) as response:
      page = json.load(response)
    names += [item["name"] for item in page.get("items", [])]
    token = page.get("nextPageToken")
    if not token:
      return sorted(names)


def test_checkpoints_on_the_emulator_restore_and_set_aside_a_damaged_step(gcs_emulator, caplog):
  import jax
  import jax.numpy as jnp

  from ganlatent_jax import checkpoint
  workdir = f"gs://{BUCKET}/checkpoints_only"
  # Forty arrays: orbax's OCDBT then reads its manifest back while writing (what needs the generation headers).
  state = {"params": {f"layer{i}": jnp.arange(6.0).reshape(2, 3) * i for i in range(40)}, "step": jnp.int32(0)}
  checkpointer = checkpoint.Checkpointer(workdir, save_every=1)
  for step in (1, 2):
    checkpointer.save(step, jax.tree.map(lambda x: x + step, state))
  checkpointer.close()
  names = _objects(gcs_emulator, "checkpoints_only/")
  assert "checkpoints_only/checkpoints/2/commit_success.txt" in names   # orbax's marker of a finished step on GCS
  assert {"checkpoints_only/checkpoint_checksums/1.json", "checkpoints_only/checkpoint_checksums/2.json"} <= set(names)

  checkpointer = checkpoint.Checkpointer(workdir, save_every=1)
  assert checkpointer.latest_step() == 2
  restored = checkpointer.restore(checkpoint.abstract_like(state))
  np.testing.assert_array_equal(restored["params"]["layer3"], np.arange(6.0).reshape(2, 3) * 3 + 2)
  checkpointer.close()

  sums = json.loads(io.read_text(workdir + "/checkpoint_checksums/2.json"))   # step 2 "corrupted": wrong checksum
  io.write_json(workdir + "/checkpoint_checksums/2.json", {key: "0" * 64 for key in sums})
  checkpointer = checkpoint.Checkpointer(workdir, save_every=1)
  with caplog.at_level(logging.WARNING):
    restored = checkpointer.restore(checkpoint.abstract_like(state))
  checkpointer.close()
  np.testing.assert_array_equal(restored["params"]["layer3"], np.arange(6.0).reshape(2, 3) * 3 + 1)
  assert "resumed from the previous kept step 1" in caplog.text
  names = _objects(gcs_emulator, "checkpoints_only/")
  assert "checkpoints_only/checkpoints_unreadable/2/commit_success.txt" in names
  assert not [n for n in names if n.startswith("checkpoints_only/checkpoints/2/")]


@pytest.mark.slow
def test_sre_quick_run_resume_and_evaluate_on_the_emulator(gcs_emulator, caplog):
  """configs/sre_3dshapes.py:quick with workdir gs://test-bucket/run in-process: the run's files in the bucket,
  a second run with more steps resumes from its checkpoint, `evaluate` writes metrics.json there."""
  from ganlatent_jax import cli, evaluate, main, methods
  from ganlatent_jax.directions.base import Directions
  workdir = f"gs://{BUCKET}/run"
  config = cli.load_config(os.path.join(ROOT, "configs", "sre_3dshapes.py:quick"))
  config.evaluation.enabled = False   # scored once, by `evaluate` below
  config.evaluation.generated_domain.enabled = False   # the factor classifier's training is minutes here
  main.train(config, workdir)   # what `python -m ganlatent_jax.main` runs after its flags: train, report, summary
  names = _objects(gcs_emulator, "run/")
  for name in ("config.json", "init_directions.npz", "directions.npz", "ranker.msgpack", "report.html",
               "images/traversal.png", "images/traversal_comparison.png", "checkpoint_checksums/2.json",
               "checkpoints/2/commit_success.txt"):
    assert f"run/{name}" in names, (name, names)
  assert [n for n in names if n.startswith("run/events.out.tfevents.")]
  assert Directions.load(workdir + "/directions.npz").meta["steps"] == 2

  config.steps = 4
  with caplog.at_level(logging.INFO):
    methods.get("sre").train(config, workdir)
  assert f"resuming from {workdir}/checkpoints step 2" in caplog.text
  assert "run/checkpoints/4/commit_success.txt" in _objects(gcs_emulator, "run/")
  assert Directions.load(workdir + "/directions.npz").meta["steps"] == 4

  config.evaluation.enabled = True
  metrics = evaluate.evaluate(config, workdir)
  evaluate.finish(workdir, config)
  stored = json.loads(io.read_text(workdir + "/metrics.json"))
  assert stored["directions"]["mig"] == pytest.approx(metrics["directions"]["mig"])
  assert set(stored) >= {"init_directions", "directions"}
  assert "MIG" in io.read_text(workdir + "/report.html")


def test_converted_generator_in_a_gs_workdir_is_saved_checked_and_loaded(memory_gcs):
  """A GAN / beta-VAE run exports its generator into the workdir; evaluate loads it back from there."""
  import jax

  from ganlatent_jax.generators import oracle
  load_lib = sys.modules["ganlatent_jax.generators.load"]   # the package's `load` attribute is the function
  local = load_lib.load("testbed:oracle-dsprites")
  directory = f"gs://{BUCKET}/run/generator"
  load_lib.save_converted(directory, local.info.config_dict(), jax.device_get(local.variables), source="test")
  assert load_lib.previous_conversion_problem(directory) is None   # a previous conversion may be replaced
  remote = load_lib.load(directory)
  assert remote.info.family == oracle.FAMILY and remote.info.source == directory
  assert remote.info.config == local.info.config
  for a, b in zip(jax.tree.leaves(remote.variables), jax.tree.leaves(local.variables)):
    np.testing.assert_array_equal(a, b)
  io.write_text(f"gs://{BUCKET}/run/other/notes.txt", "mine")
  assert "is not empty and is not a previous conversion (it holds notes.txt)" in \
      load_lib.previous_conversion_problem(f"gs://{BUCKET}/run/other")
  with pytest.raises(FileNotFoundError, match="no generator.json"):
    load_lib.load(f"gs://{BUCKET}/run/other")


@pytest.mark.slow
def test_two_processes_on_a_gs_workdir_give_the_local_one_process_directions(gcs_emulator, tmp_path):
  """The pod case on this machine: launch/local.py runs configs/sre_3dshapes.py:quick as 2 processes × 2 devices with
  --workdir=gs://test-bucket/pod (every process's orbax shards through tensorstore, process 0's files through gcsfs);
  the directions equal a local 1 process × 4 devices run's."""
  from ganlatent_jax.directions.base import Directions
  sre = ["--config=" + os.path.join(ROOT, "configs/sre_3dshapes.py:quick"), "--config.steps=4",
         "--config.checkpoint_every=2", "--config.evaluation.enabled=False"]
  env = dict(os.environ)   # the fixture's emulator settings, for the launched processes too
  env.pop("XLA_FLAGS", None)   # launch/local.py sets each process's device count

  def launch(num_processes, devices, workdir):
    command = [sys.executable, os.path.join(ROOT, "launch/local.py"), f"--num_processes={num_processes}",
               f"--devices_per_process={devices}", "--timeout=900", "--", *sre, f"--workdir={workdir}"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1000)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]

  launch(2, 2, f"gs://{BUCKET}/pod")
  names = _objects(gcs_emulator, "pod/")
  for step in (2, 4):
    for name in ("commit_success.txt", "default/ocdbt.process_0/manifest.ocdbt",
                 "default/ocdbt.process_1/manifest.ocdbt"):
      assert f"pod/checkpoints/{step}/{name}" in names, (step, name)
  for name in ("config.json", "directions.npz", "ranker.msgpack", "report.html", "images/traversal.png"):
    assert f"pod/{name}" in names, name
  launch(1, 4, tmp_path / "local")
  np.testing.assert_allclose(Directions.load(f"gs://{BUCKET}/pod/directions.npz").matrix,
                             Directions.load(tmp_path / "local" / "directions.npz").matrix, rtol=1e-5, atol=1e-6)
