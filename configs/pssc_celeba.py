"""PS-SC on CelebA 128×128 with the architecture of upstream's README command (zhuxinqimac/PS-SC): 5 SC modules at
8, 16, 32, 64 and 128 px with 5 codes each and J = 4 rectangles (d = 25), widths by upstream's nf rule (fmap_base 1024,
min 64, max 512, nf_scale 6), StyleGAN2 D and Q at D_fmap_base 2048 (64 channels at 128 px up to 512), batch 8,
R1 γ = 10 every 16 steps, EMA half-life 10k images, mirror augment (specs/pssc.md §1.1, §1.4, §1.6).

  python -m ganlatent_jax.main --config=configs/pssc_celeba.py --workdir=/data/runs/pssc_celeba     # accelerators
  python -m ganlatent_jax.main --config=configs/pssc_celeba.py:quick --workdir=/tmp/pssc_celeba_quick

Needs CelebA through TFDS (`tfds.data_source('celeb_a')`: download it first with `tfds build celeb_a` or point
--config.data.data_dir at a prepared copy); the quick variant trains 16 px networks a few steps (tests run it on
`tfds.testing.mock_data`). Evaluation: CelebA has no factor labels, so TPL only (LPIPS-VGG with
evaluation.protocol.tpl_vgg16_path = torchvision's vgg16-397923af.pth, key 'tpl'; else the pixel stand-in
'tpl_pixel'), S = 0.3 as upstream's CelebA snapshots (`tpl_small_0.3`).
Scale: the paper trains ≈ 19 epochs ≈ 480k steps at batch 8 (2 GPUs); that is the default `steps` — a GPU/TPU job.
Differences from upstream, by necessity: the image is the largest centred square of the aligned 218×178 photo
resized to 128 (upstream crops 128×128 around (89, 121) without resizing: --config.data.crop=128 gives a centred
128 crop), and G's Adam is not rescaled by 4/5 (upstream applies the lazy ratio to G although G has no regulariser).
"""
from ganlatent_jax import cli

pssc_3dshapes = cli.config_module(__file__, "pssc_3dshapes")

NUM_SC_MODULES = 5


def get_config(arg=None):
  c = pssc_3dshapes.pssc_config("celeb_a", "C_spgroup-4-5", image_channels=3)
  c.data.update(source="tfds", size=128, mirror=True)
  c.architecture.update(size=128, modules=pssc_3dshapes.modules("C_spgroup-4-5", groups=NUM_SC_MODULES, const=512),
                        fmap_base=1024, fmap_decay=1.0, fmap_min=64, fmap_max=512, nf_scale=6)
  c.discriminator.update(width=64, max_width=512)
  c.recognizer.update(width=64, max_width=512)
  c.batch_size = 8
  c.ema_decay = 0.5 ** (8 / 10000)
  c.steps = 480000
  c.checkpoint_every = 5000
  c.image_every = 5000
  c.evaluation.metrics = ("tpl",)
  del c.evaluation["generated_domain"], c.evaluation["dataset"]   # CelebA has no factor labels to score codes on
  c.evaluation.protocol.update(tpl_active_threshold=0.3)
  return cli.config_variant(c, arg, quick=quick)


def quick(c):
  """Seconds: 16 px images, two SC modules of 2 codes (J = 2), a few channels, 2 steps."""
  c.data.size = 16
  c.architecture.size = 16
  return pssc_3dshapes.quick_networks(c, pssc_3dshapes.modules("C_spgroup-2-2", groups=2, const=8,
                                                                last="ResConv-id-1"))
