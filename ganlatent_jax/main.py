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

def _define_flags():
  """Defined when run as a program only: importing this module (a test, `launch/`) leaves absl's flags alone, so it
  can sit in one process beside the other entry points (`explore` and `evaluate` also define --workdir)."""
  import types
  args = types.SimpleNamespace(
      config=config_flags.DEFINE_config_file(
          "config", None, "Path to a config file (configs/<method>_<data>.py, ':quick' for its quick variant); "
          "override fields with --config.a.b=v.", lock_config=True),
      workdir=flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, images and results: a local "
                                  "path or gs://bucket/path (needs `pip install 'ganlatent_jax[gcs]'`)."),
      distributed=flags.DEFINE_bool("jax_distributed", False,
                                    "Call jax.distributed.initialize() before anything else (multi-host runs)."),
      coordinator=flags.DEFINE_string("jax_coordinator_address", None,
                                      "host:port of process 0's coordinator (with --jax_distributed; None = from the "
                                      "cluster environment)."),
      num_processes=flags.DEFINE_integer("jax_num_processes", None,
                                         "Number of processes (with --jax_distributed)."),
      process_id=flags.DEFINE_integer("jax_process_id", None,
                                      "This process's id, 0 … N−1 (with --jax_distributed)."))
  flags.mark_flags_as_required(["config", "workdir"])
  return args


def train(config, workdir: str) -> dict:
  """What the command does after its flags: `config.method`'s `train(config, workdir)`, then (process 0) the run's
  report.html and the summary on stdout (`evaluate.finish`). Returns the files the method wrote."""
  import jax

  from ganlatent_jax import evaluate, methods
  method = methods.get(config.get("method"))
  logging.info("method %s on %d device(s), process %d/%d", config.method, jax.device_count(),
               jax.process_index(), jax.process_count())
  outputs = method.train(config, workdir)
  logging.info("wrote %s", outputs)
  evaluate.finish(workdir, config)   # process 0 only: one writer per run directory
  return outputs


def run():
  args = _define_flags()

  def main(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from ganlatent_jax import io
    try:
      io.check_filesystem(args.workdir.value)   # a gs:// workdir without gcsfs fails here, not at the first save
    except ValueError as e:
      raise app.UsageError(str(e)) from None
    if args.distributed.value:
      from ganlatent_jax import parallel   # jax after flag parsing, so --help is fast
      parallel.initialize_distributed(args.coordinator.value, args.num_processes.value, args.process_id.value)
    elif any(f.value is not None for f in (args.coordinator, args.num_processes, args.process_id)):
      raise app.UsageError("--jax_coordinator_address/--jax_num_processes/--jax_process_id need --jax_distributed")
    train(args.config.value, args.workdir.value)

  from ganlatent_jax import cli
  cli.run(main)


if __name__ == "__main__":
  run()
