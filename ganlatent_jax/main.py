"""Runs one method of ganlatent_jax from a config file.

  python -m ganlatent_jax.main --config=configs/<method>_<data>.py[:quick] --workdir=DIR [--config.key=value ...]

The config is locked: an override of a key the config does not have, or of the wrong type, exits non-zero with a
message naming the key. `config.method` selects the module of `ganlatent_jax.methods.REGISTRY` whose
`train(config, workdir)` runs; `:quick` selects the config's quick variant (seconds).

Multi-host (a TPU pod, a GPU cluster, or N processes on one machine: launch/local.py): pass --jax_distributed in
every process. On TPU VMs and under SLURM jax finds the coordinator and the process ids itself; elsewhere give
--jax_coordinator_address, --jax_num_processes and --jax_process_id. All processes run the same program on one
global mesh; only process 0 writes files (orbax checkpoints are written by all, through orbax). Their shared
workdir is then usually gs://bucket/run (every file goes through ganlatent_jax.io / etils.epath; see io.py).
"""
from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Path to a config file (configs/<method>_<data>.py, ':quick' for its quick variant); override "
    "fields with --config.a.b=v.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, images and results: a local path "
                                "or gs://bucket/path (needs `pip install 'ganlatent_jax[gcs]'`).")
_DISTRIBUTED = flags.DEFINE_bool("jax_distributed", False,
                                 "Call jax.distributed.initialize() before anything else (multi-host runs).")
_COORDINATOR = flags.DEFINE_string("jax_coordinator_address", None,
                                   "host:port of process 0's coordinator (with --jax_distributed; None = from the "
                                   "cluster environment).")
_NUM_PROCESSES = flags.DEFINE_integer("jax_num_processes", None, "Number of processes (with --jax_distributed).")
_PROCESS_ID = flags.DEFINE_integer("jax_process_id", None, "This process's id, 0 … N−1 (with --jax_distributed).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  from ganlatent_jax import io
  try:
    io.check_filesystem(_WORKDIR.value)   # a gs:// workdir without gcsfs fails here, not at the first save
  except ValueError as e:
    raise app.UsageError(str(e)) from None
  import jax  # after flag parsing, so --help is fast

  from ganlatent_jax import methods

  if _DISTRIBUTED.value:
    from ganlatent_jax import parallel
    parallel.initialize_distributed(_COORDINATOR.value, _NUM_PROCESSES.value, _PROCESS_ID.value)
  elif any(f.value is not None for f in (_COORDINATOR, _NUM_PROCESSES, _PROCESS_ID)):
    raise app.UsageError("--jax_coordinator_address/--jax_num_processes/--jax_process_id need --jax_distributed")
  config = _CONFIG.value
  method = methods.get(config.get("method"))
  logging.info("method %s on %d device(s), process %d/%d", config.method, jax.device_count(),
               jax.process_index(), jax.process_count())
  outputs = method.train(config, _WORKDIR.value)
  logging.info("wrote %s", outputs)
  if jax.process_index() == 0:
    _finish(_WORKDIR.value, config)


def _finish(workdir: str, config) -> None:
  """The run's report.html (with the config: a run without a training loop wrote no config.json) and the end-of-run
  summary on stdout (issue 24)."""
  from ganlatent_jax import console
  from ganlatent_jax.viz import report
  report.write_report(workdir, config)
  print(console.summary(workdir), flush=True)


if __name__ == "__main__":
  from ganlatent_jax import cli
  cli.run(main)
