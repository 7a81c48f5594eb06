"""generators.sampling: one object for "how to sample this generator" — prior, classes, truncation, w̄ once."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from conftest import fixture_path

from ganlatent_jax import generators
from ganlatent_jax.generators import sampling, stylegan2

BIGGAN = str(fixture_path("biggan/biggan_tiny"))
SN_MNIST = str(fixture_path("ganlatentdiscovery/gld_sn_mnist"))


@pytest.fixture(scope="module")
def stylegan():
  config = stylegan2.make_config(16, style_dim=8, n_mlp=2, channels=stylegan2.constant_channels(16, 4))
  return stylegan2.build(config, stylegan2.init_variables(config, jax.random.key(0)), "tiny")


@pytest.fixture(scope="module")
def biggan():
  return generators.load(BIGGAN)


def test_unconditional_prior_and_w_truncation_against_numpy(stylegan):
  sampler = sampling.make_sampler(stylegan, truncation=0.7, rng=jax.random.key(3), w_avg_samples=256)
  # w̄: the mean of the mapping over 256 prior draws of the given key (computed here, eagerly, as a reference).
  reference_w_avg = np.mean(np.asarray(stylegan.mapping(stylegan.sample_z(jax.random.key(3), 256))), axis=0)
  np.testing.assert_allclose(np.asarray(sampler.w_avg), reference_w_avg, rtol=1e-5, atol=1e-6)
  z = sampler.z(jax.random.key(1), 5)
  np.testing.assert_array_equal(np.asarray(z), np.asarray(stylegan.sample_z(jax.random.key(1), 5)))
  w = np.asarray(stylegan.mapping(z))
  expected = reference_w_avg + 0.7 * (w - reference_w_avg)
  np.testing.assert_allclose(np.asarray(sampler.to_space(z, "w")), expected, rtol=1e-5, atol=1e-5)
  w_plus = np.asarray(sampler.to_space(z, "w+"))
  assert w_plus.shape == (5, stylegan.info.num_ws, 8)
  np.testing.assert_allclose(w_plus[:, -1], expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_array_equal(np.asarray(sampler.to_space(z, "z")), np.asarray(z))
  assert sampler.class_ids(jax.random.key(0), 5) is None and sampler.gen_kwargs() == {}
  assert sampler.record() == {"truncation": 0.7}


def test_no_truncation_leaves_w_alone(stylegan):
  sampler = sampling.make_sampler(stylegan)
  z = sampler.z(jax.random.key(1), 3)
  np.testing.assert_array_equal(np.asarray(sampler.to_space(z, "w")), np.asarray(stylegan.mapping(z)))


def test_class_conditional_prior_classes_and_call_arguments(biggan):
  sampler = sampling.make_sampler(biggan, classes=(3, 9), truncation=0.5)
  z = np.asarray(sampler.z(jax.random.key(0), 4096))
  assert z.shape == (4096, biggan.latent_dim) and np.abs(z).max() <= 0.5 * 2.0 + 1e-6   # ψ · truncnorm(−2, 2)
  assert abs(z.std() - 0.5 * 0.8796) < 0.02      # std of a standard normal truncated to [−2, 2]: 0.8796
  classes = np.asarray(sampler.class_ids(jax.random.key(1), 1000))
  assert set(classes.tolist()) == {3, 9}
  kwargs = sampler.picture_kwargs()
  assert kwargs["truncation"] == 0.5 and np.asarray(kwargs["class_vector"]).tolist() == [3]
  assert sampler.record() == {"truncation": 0.5, "classes": [3, 9]}
  with pytest.raises(ValueError, match="needs class ids"):
    sampler.gen_kwargs()


def test_images_compile_once_per_run(stylegan):
  sampler = sampling.make_sampler(stylegan, truncation=0.5, rng=jax.random.key(0), w_avg_samples=64)
  before = sampling._images._cache_size()
  first = sampler.images(jax.random.key(1), 2)
  second = sampler.images(jax.random.key(2), 2)
  assert first.shape == (2, 16, 16, 3) and not np.allclose(np.asarray(first), np.asarray(second))
  assert sampling._images._cache_size() == before + 1
  # The same draw rendered by hand: z, then W truncated around w̄, then synthesis.
  z = sampler.z(jax.random.split(jax.random.key(1))[0], 2)
  np.testing.assert_allclose(np.asarray(first), np.asarray(stylegan.synthesis(sampler.to_space(z, "w"))),
                             rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("which,kwargs,message", [
    ("stylegan", dict(classes=(1,)), r"config.conditional.classes=\(1,\) but the stylegan2 generator is not "
                                     r"class-conditional"),
    ("stylegan", dict(truncation=0.0), r"config.truncation=0.0: truncation ψ must be > 0 \(None = no truncation\)"),
    ("sngan", dict(truncation=0.7), "config.truncation=0.7 but a sngan generator has no W space"),
    ("biggan", dict(), "a class-conditional biggan generator needs config.conditional.classes"),
    ("biggan", dict(classes=(1, 1000), truncation=0.4), r"config.conditional.classes has \[1000\] outside 0..999"),
    ("biggan", dict(classes=(1,), truncation=1.5), r"config.truncation=1.5: a biggan generator's truncation is in"),
    ("biggan", dict(classes=(1,)), r"config.truncation=None: a biggan generator's truncation is in \(0, 1\]"),
])
def test_bad_settings_name_the_config_key(stylegan, biggan, which, kwargs, message):
  gen = {"stylegan": stylegan, "biggan": biggan}.get(which) or generators.load(SN_MNIST)
  with pytest.raises(ValueError, match=message):
    sampling.make_sampler(gen, **kwargs)


def test_from_config_reads_the_vocabulary(stylegan, biggan):
  config = ml_collections.ConfigDict(dict(truncation=0.8, conditional=dict(classes=(), truncation=0.4)))
  assert sampling.from_config(config, stylegan, w_avg_samples=16).truncation == 0.8
  config.conditional.classes = (7,)
  sampler = sampling.from_config(config, biggan)
  assert sampler.classes == (7,) and sampler.truncation == 0.4   # BigGAN: conditional.truncation, not ψ in W
  with pytest.raises(ValueError, match="config.conditional.truncation=0.0"):
    config.conditional.truncation = 0.0
    sampling.from_config(config, biggan)


def test_a_sampler_passes_through_jit_as_an_argument(stylegan):
  sampler = sampling.make_sampler(stylegan, truncation=0.9, rng=jax.random.key(0), w_avg_samples=16)
  leaves = jax.tree.leaves(sampler)
  assert any(leaf is sampler.w_avg for leaf in leaves)   # w̄ and the weights are leaves; classes, ψ are static
  out = jax.jit(lambda s, z: s.to_space(z, "w"))(sampler, jnp.ones((1, 8)))
  assert out.shape == (1, 8)
