"""UD-GAN-G on CelebA 64×64 (the paper's Sec. 3.3 / Fig. 2 setup): 32 knobs, knobs 0–27 unguided (one shared siamese
network with a 28-dim output), knobs 28–31 guided by the four horizontal bands of the aligned face — top,
mid-upper, mid-lower, bottom (`nets.guidance.band0…band3`), each through its own conv trunk (specs/udgan.md A12);
λ_φ = 1 (the paper's CelebA weight).

  python -m ganlatent_jax.main --config=configs/udgan_g_celeba.py --workdir=/data/runs/udgan_g_celeba   # accelerators
  python -m ganlatent_jax.main --config=configs/udgan_g_celeba.py:quick --workdir=/tmp/udgan_g_celeba_quick

Needs CelebA through TFDS (`tfds build celeb_a`, or --config.data.data_dir at a prepared copy); the quick variant
trains tiny networks 2 steps (tests run it on `tfds.testing.mock_data`). Generator and discriminator: the testbed's
DCGAN family with 3 output channels (specs/udgan.md A7: the paper's Table 5 CelebA network is an optional
fidelity variant, not built). CelebA has no factor labels: metrics.json holds knob_effect (mean |ΔG| per knob);
the paper's CelebA attribute-classification protocol (Table 2) is not implemented.
"""
from ganlatent_jax import cli

gan_dsprites = cli.config_module(__file__, "gan_dsprites")
udgan_dsprites = cli.config_module(__file__, "udgan_dsprites")

BANDS = ("band0", "band1", "band2", "band3")   # top, mid-upper, mid-lower, bottom


def get_config(arg=None):
  c = gan_dsprites.engine_config()
  c.data.update(name="celeb_a", source="tfds", size=64)
  c.architecture.out_channels = 3
  c = udgan_dsprites.add_udgan(c, num_unguided=28, guided=BANDS, weight=1.0)
  c.udgan.image_widths = (32, 64)
  c.evaluation.metrics = ()   # no factor labels: knob_effect only
  c.steps = 100000
  return cli.config_variant(c, arg, quick=quick)


def quick(c):
  """Tiny networks (64 px, as the DCGAN family's four stride-2 layers make), 2 steps."""
  c = udgan_dsprites.quick_udgan(c)
  c.udgan.image_widths = (4,)
  return c
