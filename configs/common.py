"""The config vocabulary, and the sections several configs share (not a config itself: it has no get_config).

Every config file is `<method>_<data>.py` with `get_config(arg=None)`; `--config=configs/x.py:quick` selects its
quick variant (seconds, for tests and first tries). The keys mean the same in every config:

| key | meaning |
|---|---|
| `method` | the module of `ganlatent_jax.methods.REGISTRY` that runs the config |
| `generator` | what to LOAD: a checkpoint path, a converted directory or `testbed:NAME` (`generator_format` forces a format) |
| `architecture` | what to TRAIN (GAN engine, InfoGAN): the generator family and its sizes |
| `truncation` | ψ in W around w̄ (computed once per run, `truncation_samples` prior draws where a method has it); `None` = none (1.0 from the command line does the same) |
| `conditional = {classes, truncation}` | class-conditional generators (BigGAN): the class ids drawn per example (pictures show the first), the noise/batch-norm truncation in (0, 1] |
| `<part>.learning_rate` | the learning rate of the part it sits in (`ranker`, `directions`, `deformator`, `shift_predictor`, `optimizer`, `architecture`, `discriminator`) |
| `evaluation = {enabled, dataset, protocol: {...}, metrics: (...)}` | scoring at the end of `train` and by `python -m ganlatent_jax.evaluate`: the ground-truth dataset `{name, source}`, the protocol's settings by name (`metrics.encoder_protocol.ProtocolConfig`), the metric names |
| `evaluation.generated_domain = {enabled, labels, num_train, num_test, dci_num_train, batch_size, metrics, references, references_protocol, probe, probe_num_samples, classifier_steps, classifier_dir, partial_factors}` | scores on the generator's own samples beside the protocol's (`methods._common.generated_domain_evaluation`, `metrics.generated_domain`): each sample's code is its coordinates along the directions, its labels the oracle's exact factors (`labels='exact'`) or the factor classifier's of `metrics.quality` (`'classifier'`, trained `classifier_steps` batches on `evaluation.dataset`, cached in `classifier_dir`, '' = the workdir's parent); `'auto'` = exact on `testbed:oracle-*`, else the classifier. MIG and FactorVAE on `num_train` samples, DCI trained on the first `dci_num_train` of them and tested on `num_test` more; `metrics` ⊆ (mig, dci, factor_vae). `references` ⊆ (probe, random) adds rows: `probe` = one linear probe direction per factor (`directions.probe`, `probe` = regression or logistic, fitted on `probe_num_samples` other samples), `random` = random orthonormal directions; `references_protocol` scores them with the encoder protocol too. A factor some images do not show (dSprites' orientation of squares and ellipses): `partial_factors='per_factor'` scores it on the samples that show it (`generated_factors_partial`), `'drop'` leaves it out (`generated_factors_left_out`; the README's dSprites tables measured before 2026-12-03 22:40). On an oracle each row also has the direction recovery (`recovery_*`) |
| `traversal = {span, steps, num_samples}` | the pictures: shifts from −span to span, prior draws per direction |
| `seed`, `steps`, `batch_size`, `log_every`, `checkpoint_every`, `keep_checkpoints`, `image_every`, `progress_bar`, `num_devices` | the training loop (`training.loop.run`); `num_devices = 0` = all |
"""
import ml_collections
from ml_collections import config_dict


def no_truncation():
  """`truncation = None` that the command line can still set (`--config.truncation=0.7`): a float placeholder."""
  return config_dict.placeholder(float)


def encoder_evaluation(dataset: str, enabled: bool = True) -> ml_collections.ConfigDict:
  """The encoder protocol (SRE / Khrulkov et al.) on a procedural ground-truth dataset: disentanglement_lib's budgets
  (10000 samples) reduced for 2 CPU cores. FactorVAE votes / β-VAE points are batches of 64 images (β-VAE: 64
  pairs), so they dominate the evaluation time. With it, the generated-domain scores and their probe/random rows
  (`generated_domain_evaluation`)."""
  return ml_collections.ConfigDict(dict(
      enabled=enabled,
      dataset=ml_collections.ConfigDict(dict(name=dataset, source="procedural")),
      protocol=ml_collections.ConfigDict(dict(
          num_train=4000, num_val=1000, steps=1500, batch_size=64,
          mig_num_train=4000, dci_num_train=4000, dci_num_test=2000,
          factor_vae_num_train=1000, factor_vae_num_eval=500, factor_vae_num_variance_estimate=4000,
          beta_vae_num_train=1000, beta_vae_num_eval=500)),
      metrics=("mig", "factor_vae", "dci", "beta_vae"),
      generated_domain=generated_domain_evaluation()))


def generated_domain_evaluation(enabled: bool = True) -> ml_collections.ConfigDict:
  """Generated-domain scores with probe and random rows (`methods._common.generated_domain_evaluation`). MIG and
  FactorVAE on 6000 samples, DCI on 2000 of them (its boosted trees take ~100 s per 1000 samples on a loaded 2-core
  CPU, per set of directions), the probe on 6000 others; a 1500-step factor classifier labels GAN samples."""
  return ml_collections.ConfigDict(dict(
      enabled=enabled, labels="auto", num_train=6000, num_test=1000, dci_num_train=2000, batch_size=64,
      metrics=("mig", "dci", "factor_vae"), references=("probe", "random"), references_protocol=False,
      probe="regression", probe_num_samples=6000, classifier_steps=1500, classifier_dir="",
      partial_factors="per_factor"))


def code_generated_domain(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A GAN method's generated-domain scores of its code (`methods._common.code_axes_generated_domain`): G's images
  labelled by a factor classifier trained on the training data (`c.data`), with the probe and random rows."""
  c.evaluation.dataset = ml_collections.ConfigDict(c.data.to_dict())
  c.evaluation.generated_domain = generated_domain_evaluation()
  return c


def quick_code_generated_domain(c: ml_collections.ConfigDict) -> None:
  """`code_generated_domain`'s token budget, on the quick variant's data (its resolution), where it is configured."""
  if "generated_domain" in c.evaluation:
    c.evaluation.dataset = ml_collections.ConfigDict(c.data.to_dict())
    quick_generated_domain(c.evaluation.generated_domain)


def quick_generated_domain(section: ml_collections.ConfigDict) -> None:
  """A token budget (seconds): every step, no measurement (a 20-step classifier, a few hundred samples, no DCI)."""
  section.update(num_train=128, num_test=32, dci_num_train=64, batch_size=32, metrics=("mig", "factor_vae"),
                 probe_num_samples=128, classifier_steps=20)


def quick_evaluation(evaluation: ml_collections.ConfigDict) -> None:
  """A token budget (seconds): exercises every step of the protocol, measures nothing."""
  if "generated_domain" in evaluation:
    quick_generated_domain(evaluation.generated_domain)
  evaluation.protocol.update(num_train=64, num_val=32, steps=2, batch_size=16, mig_num_train=128,
                             dci_num_train=128, dci_num_test=64, factor_vae_num_train=8, factor_vae_num_eval=4,
                             factor_vae_num_variance_estimate=128, beta_vae_num_train=8, beta_vae_num_eval=4)
  evaluation.metrics = ("mig", "factor_vae")
