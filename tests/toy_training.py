"""A small real training problem (an MLP regressing a fixed random target, Adam) for testing the shared loop.

Used in-process and by subprocesses (the kill-and-resume test), so it must be importable from a script.
"""
import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax

from ganlatent_jax import parallel

IN_DIM, HIDDEN = 6, 16


@flax.struct.dataclass
class State:
  step: jax.Array
  params: dict
  opt_state: optax.OptState


def config(**overrides) -> ml_collections.ConfigDict:
  c = ml_collections.ConfigDict(dict(seed=0, steps=30, batch_size=16, log_every=5, checkpoint_every=5,
                                     keep_checkpoints=2, image_every=0, learning_rate=1e-2, progress_bar=False,
                                     nan_at_step=-1))
  c.update(overrides)
  return c


def _target(x):
  return jnp.sin(x.sum(-1, keepdims=True))


def _predict(params, x):
  h = jnp.tanh(x @ params["w1"] + params["b1"])
  return h @ params["w2"]


def make(c: ml_collections.ConfigDict, mesh):
  optimizer = optax.adam(c.learning_rate)

  def init_fn(rng):
    k1, k2 = jax.random.split(rng)
    params = {"w1": jax.random.normal(k1, (IN_DIM, HIDDEN)) * 0.5, "b1": jnp.zeros((HIDDEN,)),
              "w2": jax.random.normal(k2, (HIDDEN, 1)) * 0.5}
    return State(step=jnp.zeros((), jnp.int32), params=params, opt_state=optimizer.init(params))

  batch_sharding = parallel.data_sharding(mesh)

  @jax.jit
  def train_step(state, rng):
    x = jax.random.normal(rng, (c.batch_size, IN_DIM))
    x = jax.lax.with_sharding_constraint(x, batch_sharding)

    def loss_fn(params):
      return jnp.mean((_predict(params, x) - _target(x)) ** 2)

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    loss = jnp.where(state.step + 1 == c.nan_at_step, jnp.nan, loss)
    updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    return State(step=state.step + 1, params=params, opt_state=opt_state), {"loss": loss}

  return init_fn, train_step
