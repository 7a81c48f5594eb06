"""The direction explorer: renders match the generator's own maths, the jitted function compiles once, the server
answers on 127.0.0.1 only, a testbed image takes < 200 ms."""
import threading
import time
import urllib.error
import urllib.request

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ganlatent_jax import directions as dirs
from ganlatent_jax import generators
from ganlatent_jax import explore
from ganlatent_jax.directions import spaces
from ganlatent_jax.generators import stylegan2


@pytest.fixture(scope="module")
def tiny_stylegan():
  config = stylegan2.make_config(16, style_dim=8, n_mlp=2, channels=stylegan2.constant_channels(16, 8))
  return stylegan2.build(config, stylegan2.init_variables(config, jax.random.key(0)), "tiny")


def _display(gen, images):
  lo, hi = gen.info.output_range
  return (np.clip((np.asarray(images)[0] - lo) / (hi - lo), 0, 1) * 255 + 0.5).astype(np.uint8)


def test_w_directions_follow_truncation_then_shift(tiny_stylegan):
  gen = tiny_stylegan
  d = dirs.random(8, 3, jax.random.key(1), space="w")
  explorer = explore.Explorer(gen, d)
  coefficients = np.array([1.5, 0.0, -2.0], np.float32)
  z = gen.sample_z(jax.random.key(4), 1)
  w_avg = np.asarray(jax.jit(spaces.mean_w)(gen, jax.random.key(1)))
  w = w_avg + 0.7 * (np.asarray(jax.jit(lambda g, z: g.mapping(z))(gen, z)) - w_avg)  # StyleGAN2 truncation (numpy)
  expected = jax.jit(lambda g, w: g.synthesis(w))(gen, jnp.asarray(w + coefficients @ d.matrix.T))
  np.testing.assert_allclose(explorer.image(4, coefficients, 0.7).astype(int), _display(gen, expected), atol=1)
  assert not np.array_equal(explorer.image(4, coefficients, 0.7), explorer.image(4, None, 0.7))
  assert not np.array_equal(explorer.image(4, None, 0.7), explorer.image(5, None, 0.7))
  before = explore.render._cache_size()
  for value in (0.3, -0.8, 2.0):
    explorer.image(6, np.full(3, value, np.float32), 0.5 + value / 10)
  assert explore.render._cache_size() == before  # new values and truncations reuse the one executable


def test_z_directions_of_a_generator_without_w_scale_z():
  gen = generators.load("testbed:dsprites")  # a DCGAN: z only, grey images shown as RGB
  d = dirs.random(gen.latent_dim, 2, jax.random.key(1))
  explorer = explore.Explorer(gen, d)
  z = gen.sample_z(jax.random.key(2), 1)
  shifted = 0.5 * np.asarray(z) + np.array([[1.0, -1.0]], np.float32) @ d.matrix.T
  expected = jax.jit(lambda g, z: g(z))(gen, jnp.asarray(shifted))
  image = explorer.image(2, [1.0, -1.0], 0.5)
  assert image.shape == (64, 64, 3)
  np.testing.assert_allclose(image[..., 0].astype(int), _display(gen, expected)[..., 0], atol=1)


@pytest.mark.parametrize("kwargs,message", [
    (dict(coefficients=[1.0]), "1 coefficients for 3 directions"),
    (dict(coefficients=None, truncation=1.5), "truncation 1.5 is not in"),
])
def test_bad_requests_are_named(tiny_stylegan, kwargs, message):
  explorer = explore.Explorer(tiny_stylegan, dirs.random(8, 3, jax.random.key(1), space="w"))
  with pytest.raises(ValueError, match=message):
    explorer.image(0, **kwargs)


def test_directions_of_another_size_are_refused(tiny_stylegan):
  with pytest.raises(ValueError, match="dimension 5 in space 'w' do not fit"):
    explore.Explorer(tiny_stylegan, dirs.random(5, 2, jax.random.key(1), space="w"))


def test_server_serves_page_and_images_on_localhost_only(tiny_stylegan):
  explorer = explore.Explorer(tiny_stylegan, dirs.random(8, 3, jax.random.key(1), space="w"))
  server = explore.make_server(explorer, 0, title="tiny")
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  try:
    host, port = server.server_address
    assert host == "127.0.0.1"
    base = f"http://127.0.0.1:{port}"
    page = urllib.request.urlopen(base + "/", timeout=60).read().decode()
    assert page.count('class="direction"') == 3 and "http://" not in page and "https://" not in page
    assert 'id="class_id"' not in page  # unconditional generator: no class field
    response = urllib.request.urlopen(base + "/render?seed=1&truncation=0.8&c=0.5,0,0", timeout=60)
    assert response.headers["Content-Type"] == "image/png" and response.read()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(urllib.error.HTTPError) as error:
      urllib.request.urlopen(base + "/render?seed=1&c=1,2", timeout=60)
    assert error.value.code == 400 and b"2 coefficients for 3 directions" in error.value.read()
  finally:
    server.shutdown()
    server.server_close()


def test_testbed_image_renders_in_under_200_ms():
  gen = generators.load("testbed:shapes3d")
  explorer = explore.Explorer(gen, dirs.random(gen.info.w_dim, 10, jax.random.key(0), space="w"))
  explorer.png(0, None, 0.8)  # compile
  times = []
  for i in range(10):
    start = time.perf_counter()
    explorer.png(i, np.linspace(-2, 2, 10) * (i % 3), 0.6 + i / 50)
    times.append(time.perf_counter() - start)
  assert np.median(times) < 0.2, times


def test_class_conditional_generator_gets_a_class_field(fixtures):
  gen = generators.load(fixtures("biggan/biggan_tiny"))  # a tiny BigGAN-deep with upstream's layout
  explorer = explore.Explorer(gen, dirs.random(gen.latent_dim, 2, jax.random.key(1)))
  page = explore.page(explorer, "tiny BigGAN", truncation=0.4, span=2.0, class_id=3)
  assert f'id="class_id" min="0" max="{gen.info.num_classes - 1}" value="3"' in page
  first = explorer.image(0, [0.5, 0.0], 0.4, class_id=0)
  assert not np.array_equal(first, explorer.image(0, [0.5, 0.0], 0.4, class_id=1))
  with pytest.raises(ValueError, match=f"class {gen.info.num_classes} is not in"):
    explorer.image(0, None, 0.4, class_id=gen.info.num_classes)


def test_command_names_what_is_missing(tmp_path):
  import os
  import subprocess
  import sys
  env = dict(os.environ)
  env.pop("XLA_FLAGS", None)
  result = subprocess.run([sys.executable, "-m", "ganlatent_jax.explore", f"--workdir={tmp_path}", "--port=0"],
                          capture_output=True, text=True, env=env, timeout=300)
  assert result.returncode != 0 and "has no config.json to take the generator from" in result.stderr
