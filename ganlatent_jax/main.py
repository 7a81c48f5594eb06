"""Runs one method of ganlatent_jax from a config file.

  python -m ganlatent_jax.main --config=configs/<method>_<data>.py --workdir=DIR [--config.key=value ...]

The config is locked: an override of a key the config does not have, or of the wrong type, exits non-zero with a
message naming the key. `config.method` selects the module in `ganlatent_jax/methods/` whose `train(config, workdir)`
runs. Multi-host: pass --jax_distributed on every host (coordinator and process ids come from the environment).
"""
from absl import app, flags, logging
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Path to a config file (configs/<method>_<data>.py); override fields with --config.a.b=v.",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for checkpoints, logs, images and results.")
_DISTRIBUTED = flags.DEFINE_bool("jax_distributed", False,
                                 "Call jax.distributed.initialize() before anything else (multi-host runs).")
flags.mark_flags_as_required(["config", "workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  import jax  # after flag parsing, so --help is fast and XLA flags set by the library apply

  from ganlatent_jax import methods

  if _DISTRIBUTED.value:
    jax.distributed.initialize()
  config = _CONFIG.value
  method = methods.get(config.get("method"))
  logging.info("method %s on %d device(s), process %d/%d", config.method, jax.device_count(),
               jax.process_index(), jax.process_count())
  method.train(config, _WORKDIR.value)


if __name__ == "__main__":
  from ganlatent_jax import cli
  cli.run(main)
