"""Sharded jitted steps equal the 1-device step, whatever the device count."""
import jax
import numpy as np
import pytest

from ganlatent_jax import parallel
import toy_training


def _run_steps(num_devices, steps=5):
  mesh = parallel.make_mesh(num_devices)
  c = toy_training.config()
  init_fn, train_step = toy_training.make(c, mesh)
  state = jax.jit(init_fn, out_shardings=parallel.replicated_sharding(mesh))(jax.random.key(0))
  losses = []
  for step in range(steps):
    state, metrics = train_step(state, parallel.step_rng(c.seed, step))
    losses.append(float(metrics["loss"]))
  return jax.device_get(state.params), losses


def test_eight_simulated_devices():
  assert jax.device_count() == 8


@pytest.mark.parametrize("num_devices", [2, 4, 8])
def test_sharded_step_equals_single_device_step(num_devices):
  single_params, single_losses = _run_steps(1)
  params, losses = _run_steps(num_devices)
  np.testing.assert_allclose(losses, single_losses, rtol=1e-5, atol=1e-6)
  for key in single_params:
    np.testing.assert_allclose(params[key], single_params[key], rtol=1e-5, atol=1e-6)


def test_shard_batch_splits_the_leading_axis():
  mesh = parallel.make_mesh(8)
  x = parallel.shard_batch(np.arange(32.0).reshape(16, 2), mesh)
  assert len(x.addressable_shards) == 8
  assert x.addressable_shards[0].data.shape == (2, 2)
  np.testing.assert_array_equal(np.asarray(x), np.arange(32.0).reshape(16, 2))


def test_batch_not_divisible_names_the_config_key():
  mesh = parallel.make_mesh(8)
  with pytest.raises(ValueError, match=r"config.batch_size=12 is not divisible by the 8 devices"):
    parallel.check_batch_size(12, mesh)
  parallel.check_batch_size(16, mesh)


def test_too_many_devices_requested():
  with pytest.raises(ValueError, match="asks for 9 devices"):
    parallel.make_mesh(9)


def test_step_rng_is_a_function_of_seed_and_step():
  a = jax.random.key_data(parallel.step_rng(3, 7))
  np.testing.assert_array_equal(a, jax.random.key_data(parallel.step_rng(3, 7)))
  assert not np.array_equal(a, jax.random.key_data(parallel.step_rng(3, 8)))
  assert not np.array_equal(a, jax.random.key_data(parallel.step_rng(4, 7)))
  r1, r2 = parallel.step_numpy_rng(1, 2), parallel.step_numpy_rng(1, 2)
  assert r1.randint(1 << 30) == r2.randint(1 << 30)


_LATE_PROCESS_ZERO = """
import os, sys, time
os.environ["JAX_PLATFORMS"] = "cpu"
from ganlatent_jax import parallel
if sys.argv[3] != "default":
  parallel.SHUTDOWN_TIMEOUT_SECONDS = int(sys.argv[3])
parallel.initialize_distributed("127.0.0.1:" + sys.argv[1], 2, int(sys.argv[2]))
import jax
if jax.process_index() == 0:
  time.sleep(6)   # process 0 writing the run's report while process 1 already waits in jax's shutdown barrier
print("done", jax.process_index(), flush=True)
"""


@pytest.mark.parametrize("timeout, survives", [("2", False), ("default", True)])
def test_processes_wait_for_process_zero_at_exit(timeout, survives):
  """Two real processes; process 0 exits 6 s after process 1. A shutdown timeout shorter than that aborts both
  (jax's own default, 30 s, did so in the slow set's two-process GAN run on a loaded machine); ours waits."""
  import subprocess
  import sys

  from conftest import free_port
  assert parallel.SHUTDOWN_TIMEOUT_SECONDS >= 600
  port = str(free_port())
  procs = [subprocess.Popen([sys.executable, "-c", _LATE_PROCESS_ZERO, port, str(i), timeout],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in (0, 1)]
  outputs = [p.communicate(timeout=240)[0] for p in procs]
  codes = [p.returncode for p in procs]
  if survives:
    assert codes == [0, 0], outputs[0][-2000:] + outputs[1][-2000:]
    assert [o.strip().splitlines()[-1] for o in outputs] == ["done 0", "done 1"]
  else:
    assert 0 not in codes, "a 2 s shutdown timeout should abort a run whose process 0 is 6 s late"
