"""PS-SC on procedural 3DShapes (64×64×3): the modular generator with 4 SC modules (3 codes each, J = 4 rectangles:
d = 12, twice the factors, "over-parameterised" as the paper stresses), a StyleGAN2-body recognizer Q trained by G's
optimizer with the Perceptual Simplicity loss, StyleGAN2 discriminator (methods/pssc.py, specs/pssc.md).

  python -m ganlatent_jax.main --config=configs/pssc_3dshapes.py --workdir=/tmp/pssc_3dshapes
  python -m ganlatent_jax.main --config=configs/pssc_3dshapes.py:quick --workdir=/tmp/pssc_quick   # seconds
  python -m ganlatent_jax.evaluate --config=configs/pssc_3dshapes.py --workdir=/tmp/pssc_3dshapes

The paper's appendix (module lists, code counts, J, training lengths for 3DShapes) is not available: this is the
64² analogue of upstream's README CelebA-128 list (specs/pssc.md A1), widths by upstream's nf rule landing on
the shapes3d testbed's (64, 64, 32, 16, 8). Ablations by override (the paper's Tables 3–4):
  --config.pssc.loss=infogan_l2                        upstream's InfoGAN baseline (λ‖Q(G(c)) − c‖₂), "+SC" row
  --config.architecture.modules='[... C_global-3 ...]'  no SC ("+PS" row; with infogan_l2: the "InfoGAN" row)
  --config.pssc.weight=0.001|0.1                       λ (upstream's normalisation; reduction='paper' = Eq. 9)
Q's FactorVAE twice: 'factor_vae' with disentanglement_lib's vote batch / prune threshold 64 / 0.05 (comparable with
the other tables) and 'factor_vae_upstream' with upstream PS-SC's 60 / 0.1 (the paper's Table 5 protocol), same votes.
Optimiser as upstream (Adam 0.002, β = (0, 0.99), R1 γ = 10 every 16 steps, EMA half-life 10k images), G's and Q's
Adam rescaled by 4/5 as upstream's (its lazy ratio without a G regulariser: `g_lazy_every = 4`).
"""
import ml_collections

from ganlatent_jax import cli

common = cli.config_module(__file__, "common")
gan_3dshapes = cli.config_module(__file__, "gan_3dshapes")

SC_GROUP = "ResConv-up-1, {latent}, ResConv-id-1, Noise-2"


def modules(latent: str, groups: int = 4, const: int = 64, last: str = "ResConv-id-2") -> str:
  """Upstream's module grammar: Const, `groups` × [up, latent module, id, noise], a last conv stack."""
  return "[" + ", ".join([f"Const-{const}"] + [SC_GROUP.format(latent=latent)] * groups + [last]) + "]"


def pssc_config(data: str, latent_module: str, image_channels: int) -> ml_collections.ConfigDict:
  c = gan_3dshapes.get_config()
  c.method = "pssc"
  c.data = ml_collections.ConfigDict(dict(name=data))
  c.steps = 10000
  c.architecture = ml_collections.ConfigDict(dict(
      family="pssc", size=64, modules=modules(latent_module), image_channels=image_channels, fmap_base=128,
      fmap_decay=1.0, fmap_min=8, fmap_max=64, nf_scale=4, random_noise=True, learning_rate=0.002))
  c.discriminator = ml_collections.ConfigDict(dict(kind="stylegan2", width=8, max_width=64, equalized=True,
                                                   stddev_group=4, aux_hidden=0, learning_rate=0.002))
  # Q: the discriminator's body with a d-way linear head, equalized-lr as every layer of upstream's Q (until
  # 2026-12-04 the head was a plain Dense: the dSprites table and the 3DShapes runs before then); trained by G's
  # optimizer (no learning rate of its own).
  c.recognizer = ml_collections.ConfigDict(dict(kind="stylegan2", width=8, max_width=64, equalized=True,
                                                stddev_group=4, aux_hidden=0, aux_equalized=True))
  c.pssc = ml_collections.ConfigDict(dict(loss="ps", weight=0.01, epsilon=3.0, random_eps=True, eps_std=2.0,
                                          reduction="upstream"))
  c.beta1 = 0.0
  c.beta2 = 0.99
  c.r1_gamma = 10.0          # the research code's γ (the release's default is 100), specs/pssc.md A5
  c.r1_every = 16
  c.ema_decay = 0.5 ** (16 / 10000)
  c.pl_weight = 0.0          # PS-SC's G has no W space
  c.g_lazy_every = 4         # yet upstream's G/Q Adam runs at lr·4/5, β^(4/5) (StyleGAN2-TF's G_reg_interval), A6
  c.style_mixing = 0.0
  # G's phase before D's in every iteration, as upstream's StyleGAN2-TF loop (until 2026-12-04 D's came first, the
  # engine's default: every PS-SC number measured before then).
  c.step_order = "g_then_d"
  # Q on real images of the training data (MIG, FactorVAE, DCI), TPL of the EMA generator: LPIPS-VGG (the paper's, key
  # 'tpl') with tpl_vgg16_path = torchvision's vgg16-397923af.pth, else the pixel distance (key 'tpl_pixel').
  # Vote budgets as the SRE table's (disentanglement_lib: 10000/5000); FactorVAE with disentanglement_lib's batch /
  # prune (64 / 0.05) and again with upstream's (60 / 0.1: 'factor_vae_upstream').
  c.evaluation = ml_collections.ConfigDict(dict(
      enabled=True, metrics=("mig", "factor_vae", "factor_vae_upstream", "dci", "tpl"),
      protocol=ml_collections.ConfigDict(dict(
          mig_num_points=10000, factor_vae_batch_size=64, factor_vae_prune_threshold=0.05,
          factor_vae_upstream_batch_size=60, factor_vae_upstream_prune_threshold=0.1,
          factor_vae_num_train=1000, factor_vae_num_eval=500, factor_vae_num_variance=4000,
          dci_num_train=2000, dci_num_test=1000,
          tpl_num_traversals=20, tpl_points_per_dim=49, tpl_active_threshold=0.1,
          tpl_vgg16_path="", tpl_lpips_heads="shipped"))))
  return common.code_generated_domain(c)


def quick_evaluation(c):
  """A token evaluation budget (measures nothing)."""
  c.evaluation.protocol.update(mig_num_points=200, factor_vae_batch_size=8, factor_vae_upstream_batch_size=8,
                               factor_vae_num_train=8, factor_vae_num_eval=4, factor_vae_num_variance=200,
                               dci_num_train=64, dci_num_test=64, tpl_num_traversals=2, tpl_points_per_dim=5)
  common.quick_code_generated_domain(c)
  return c


def quick_networks(c, size_modules: str):
  """The loop and the tiny networks of a quick variant."""
  c.update(steps=2, batch_size=8, log_every=1, checkpoint_every=2, image_every=0, progress_bar=False)
  c.architecture.update(modules=size_modules, fmap_base=8, fmap_min=4, fmap_max=8)
  c.discriminator.update(width=4, max_width=8)
  c.recognizer.update(width=4, max_width=8)
  c.r1_every = 2
  return quick_evaluation(c)


def quick(c):
  """Seconds: 16×16 images, d = 4 (two SC modules of 2 codes, J = 2), a few channels, 2 steps."""
  c.data.resolution = 16
  c.architecture.size = 16
  return quick_networks(c, modules("C_spgroup-2-2", groups=2, const=8, last="ResConv-id-1"))


def get_config(arg=None):
  return cli.config_variant(pssc_config("shapes3d", "C_spgroup-4-3", image_channels=3), arg, quick=quick)
