"""Runs one method of ganlatent_jax from a config file.

  python -m ganlatent_jax.main --config=configs/<method>_<data>.py[:quick] --workdir=DIR [--config.key=value ...]

The config is locked: an override of a key the config does not have, or of the wrong type, exits non-zero with a
message naming the key. `config.method` selects the module of `ganlatent_jax.methods.REGISTRY` whose
`train(config, workdir)` runs; `:quick` selects the config's quick variant (seconds). Multi-host: pass
--jax_distributed on every host (coordinator and process ids come from the environment).
"""
from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Path to a config file (configs/<method>_<data>.py, ':quick' for its quick variant); override "
    "fields with --config.a.b=v.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, images and results.")
_DISTRIBUTED = flags.DEFINE_bool("jax_distributed", False,
                                 "Call jax.distributed.initialize() before anything else (multi-host runs).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  import jax  # after flag parsing, so --help is fast

  from ganlatent_jax import methods

  if _DISTRIBUTED.value:
    jax.distributed.initialize()
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
