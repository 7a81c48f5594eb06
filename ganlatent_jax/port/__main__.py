# `python -m ganlatent_jax.port --in=CKPT --out=DIR`: the converter command the README documents.
# The converter itself (ganlatent_jax/convert.py) sits above `port/` and the generator families; this entry point
# only starts it — the one module of `port/` that refers upward (see tests/test_package_boundaries.py).
from absl import flags

from ganlatent_jax import convert

__doc__ = convert.__doc__  # what --help prints

if __name__ == "__main__":
  args = convert.define_flags()
  flags.adopt_module_key_flags(convert)  # --help lists the converter's flags
  convert.run(args)
