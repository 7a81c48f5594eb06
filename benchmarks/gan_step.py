"""Speed of the GAN engine's full step (`methods/_gan.py`) at the testbed configs, printing the harness JSON line.

  python benchmarks/gan_step.py --config=gan_3dshapes [--cycles=10]     # StyleGAN2 64×64, batch 16
  python benchmarks/gan_step.py --config=gan_dsprites                   # DCGAN 64×64×1, batch 16
  python benchmarks/gan_step.py --config=gan_3dshapes --breakdown       # also time the step's pieces separately
  # the PyTorch twin of the same work (dev-only venv with torch==2.13.0):
  /tmp/venv-torch/bin/python benchmarks/torch_gan_twins.py --config=gan_3dshapes [--breakdown]

What is timed: the engine's jitted step exactly as training runs it (D update, lazy R1 update, G update, lazy
path-length update, EMA, in one dispatch), over whole cycles of lcm(r1_every, pl_every) consecutive steps (16 for
both testbeds), so the lazy regularisers count in their real proportion. Each timed value is the mean step time of
one cycle; the median over `--cycles` cycles (after one warm-up cycle) is reported with min/max, and
`kind_weighted_step_s` = Σ over kinds of step (plain, pl, r1+pl) of the kind's median × its share of a cycle. Real batches are
rendered before the timing (as a prefetching loop would; their host cost is reported separately as `render_ms`,
with the procedural geometry cache warmed, as it is after the first minutes of a run).

The first step's cost is reported split into trace+lower (`lower_s`) and XLA compilation (`compile_s`), wall and
process CPU seconds (`*_cpu_s`: less sensitive to the machine's load); `init_s` is the jitted init_fn (compile+run).
`--breakdown` jits and times each piece on its own (median of ≥ 10 calls): G's forward for D's fakes, D's
adversarial forward/backward, R1's double backward, G's adversarial forward/backward (through D), the path-length
double backward, and the Adam/EMA updates; `per_step_model_s` adds them in their cycle proportion.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "configs")


def parse_args(argv=None):
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", default="gan_3dshapes", help="a testbed GAN config name in configs/")
  parser.add_argument("--cycles", type=int, default=3, help="timed cycles (each lcm(r1_every, pl_every) steps)")
  parser.add_argument("--threads", type=int, default=0, help="torch twin only: torch.set_num_threads (0 = default)")
  parser.add_argument("--cache-dir", default="", help="JAX only: persistent compilation cache directory (reruns "
                      "skip compiling; compile_s is then the cache load)")
  parser.add_argument("--breakdown", action="store_true", help="also time the pieces of the step separately")
  parser.add_argument("--piece-calls", type=int, default=10)
  parser.add_argument("--no-step", dest="step", action="store_false", help="only the breakdown (no full step)")
  parser.add_argument("--override", action="append", default=[],
                      help="config override key=python_literal, e.g. pl_weight=0.0 (for what-if timings)")
  return parser.parse_args(argv)


def cycle_length(r1_every: int, pl_every: int) -> int:
  return math.lcm(max(r1_every, 1), max(pl_every, 1))


def load_config(name: str, overrides=()):
  import ast
  from ganlatent_jax import cli
  config = cli.load_config(os.path.join(CONFIGS, f"{name}.py"))
  for item in overrides:
    key, _, value = item.partition("=")
    node = config
    *parents, leaf = key.split(".")
    for parent in parents:
      node = node[parent]
    node[leaf] = ast.literal_eval(value)
  return config


def load_average() -> str:
  return " ".join(f"{v:.1f}" for v in os.getloadavg())


def kind_summary(by_kind: dict, batch: int) -> dict:
  """Per kind of step (plain, pl, r1+pl, ...) the median seconds, and their mix in a cycle: the cycle's mean step
  time from the per-kind medians (robust to one slow step of a loaded machine) and the images/s it gives."""
  medians = {k: statistics.median(v) for k, v in sorted(by_kind.items())}
  total = sum(len(v) for v in by_kind.values())
  mean_step = sum(medians[k] * len(v) / total for k, v in by_kind.items())
  return {"step_kind_median_s": {k: round(v, 5) for k, v in medians.items()},
          "step_kind_count": {k: len(v) for k, v in sorted(by_kind.items())},
          "kind_weighted_step_s": round(mean_step, 5), "kind_weighted_images_per_s": round(batch / mean_step, 3)}


def median_wall_and_cpu(fn, calls: int, warmup: int = 2) -> tuple[float, float]:
  """Median wall and process-CPU seconds of `calls` calls after `warmup` (CPU time: robust to a loaded machine
  when the process runs single-threaded)."""
  from harness import block
  for _ in range(warmup):
    block(fn())
  wall, cpu = [], []
  for _ in range(calls):
    t0, c0 = time.perf_counter(), time.process_time()
    block(fn())
    wall.append(time.perf_counter() - t0)
    cpu.append(time.process_time() - c0)
  return statistics.median(wall), statistics.median(cpu)


def piece_summary(seconds: dict, r1_every: int, pl_every: int) -> dict:
  """Rounded pieces and their sum in the proportions of one engine step (lazy pieces divided by their every)."""
  def per_step(sec):
    total = (sec["g_forward_for_d"] + sec["d_adversarial_fwd_bwd"] + sec["g_adversarial_fwd_bwd"] + sec["d_adam"]
             + sec["g_adam_ema"])
    if r1_every:
      total += (sec["r1_double_backward"] + sec["d_adam"]) / r1_every
    if pl_every:
      total += (sec["path_length_double_backward"] + sec["g_adam_ema"]) / pl_every
    return round(total, 5)
  wall = {k: v[0] for k, v in seconds.items()}
  cpu = {k: v[1] for k, v in seconds.items()}
  return {"pieces_s": {k: round(v, 5) for k, v in wall.items()}, "per_step_model_s": per_step(wall),
          "pieces_cpu_s": {k: round(v, 5) for k, v in cpu.items()}, "per_step_model_cpu_s": per_step(cpu)}


def breakdown(engine, state, real, calls: int) -> dict:
  """Seconds of each piece of the step, each jitted and timed on its own (same shapes as in the step)."""
  import jax
  import jax.numpy as jnp
  import optax
  from ganlatent_jax.methods import gan

  regs, gen, disc = engine.regularisers, engine.gen, engine.disc
  batch = real.shape[0]
  # Each optimizer trains a group {name: params} (the engine's State.params by network).
  g_group, d_group = {"generator": state.params["generator"]}, {"discriminator": state.params["discriminator"]}
  buffers = state.generator_buffers
  key = jax.random.key(7)

  def discriminate(d_params, images):
    return disc.apply({"params": d_params["discriminator"]}, images)[0]

  def generate(g_params, rng, n):
    _, z, kwargs, noise_key = engine.draw(rng, n)
    return gen.apply(g_params["generator"], buffers, z, noise_key, **kwargs)

  fake = jax.jit(generate, static_argnums=2)(g_group, key, batch)

  @jax.jit
  def g_forward(g_params, rng):
    return generate(g_params, rng, batch)

  @jax.jit
  def d_adversarial(d_params, fake, real):
    return jax.value_and_grad(lambda p: gan.nonsaturating_d_loss(discriminate(p, real), discriminate(p, fake)))(
        d_params)

  @jax.jit
  def r1(d_params, real):
    return jax.value_and_grad(lambda p: gan.r1_penalty(lambda x: discriminate(p, x), real))(d_params)

  @jax.jit
  def g_adversarial(g_params, d_params, rng):
    return jax.value_and_grad(lambda p: gan.nonsaturating_g_loss(discriminate(d_params, generate(p, rng, batch))))(
        g_params)

  pl_batch = max(1, batch // max(regs.pl_batch_shrink, 1))

  @jax.jit
  def path_length(g_params, rng):
    _, z, kwargs, noise_key = engine.draw(rng, pl_batch)
    path_key, synth_key = jax.random.split(noise_key)

    def loss(p):
      latent = gen.styles(p["generator"], buffers, z, **kwargs)
      lengths = gan.path_lengths(lambda l: gen.synthesis(p["generator"], buffers, l, synth_key), latent, path_key)
      return gan.path_length_penalty(lengths, jnp.zeros(()), regs.pl_decay)[0]
    return jax.value_and_grad(loss)(g_params)

  @jax.jit
  def d_adam(d_params, grads, opt_state):
    updates, opt_state = engine.d_optimizer.update(grads, opt_state, d_params)
    return optax.apply_updates(d_params, updates), opt_state

  @jax.jit
  def g_adam_ema(g_params, grads, opt_state, ema):
    updates, opt_state = engine.g_optimizer.update(grads, opt_state, g_params)
    new = optax.apply_updates(g_params, updates)
    return new, opt_state, gan.ema_update(ema, new["generator"], 0.999)

  d_grads = jax.tree.map(jnp.ones_like, d_group)
  g_grads = jax.tree.map(jnp.ones_like, g_group)
  pieces = {
      "g_forward_for_d": lambda: g_forward(g_group, key),
      "d_adversarial_fwd_bwd": lambda: d_adversarial(d_group, fake, real),
      "g_adversarial_fwd_bwd": lambda: g_adversarial(g_group, d_group, key),
      "d_adam": lambda: d_adam(d_group, d_grads, state.opt_state["discriminator"]),
      "g_adam_ema": lambda: g_adam_ema(g_group, g_grads, state.opt_state["generator"], state.generator_ema),
  }
  if regs.r1_every:
    pieces["r1_double_backward"] = lambda: r1(d_group, real)
  if regs.pl_every:
    pieces["path_length_double_backward"] = lambda: path_length(g_group, key)
  seconds = {name: median_wall_and_cpu(fn, calls) for name, fn in pieces.items()}
  return piece_summary(seconds, regs.r1_every, regs.pl_every)


def main(argv=None):
  args = parse_args(argv)
  from ganlatent_jax import platform
  platform.apply_cpu_settings()   # as the commands do (importing the package does not)
  import jax
  from harness import report
  if args.cache_dir:
    jax.config.update("jax_compilation_cache_dir", args.cache_dir)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

  from ganlatent_jax import parallel
  from ganlatent_jax.methods import gan

  config = load_config(args.config, args.override)
  mesh, engine = gan.setup(config)
  regs = engine.regularisers
  cycle = cycle_length(regs.r1_every, regs.pl_every)
  batch = int(config.batch_size)
  load_before = load_average()

  # Real batches rendered ahead (geometry cache warmed first, as after a run's first minutes).
  if config.data.name == "shapes3d":
    from ganlatent_jax.data import shapes3d_procedural
    shapes3d_procedural.warm_geometry_cache(resolution=engine.gen.info.image_shape[0])
  render_times, reals = [], []
  for step in range(cycle):
    start = time.perf_counter()
    reals.append(engine.real_batch(step))
    jax.block_until_ready(reals[-1])
    render_times.append(time.perf_counter() - start)

  start, cpu = time.perf_counter(), time.process_time()
  state = jax.jit(engine.init_fn, out_shardings=parallel.replicated_sharding(mesh))(jax.random.key(config.seed))
  jax.block_until_ready(state)
  init_s, init_cpu_s = time.perf_counter() - start, time.process_time() - cpu
  rng = parallel.step_rng(config.seed, 0)
  start, cpu = time.perf_counter(), time.process_time()
  lowered = engine.jitted_step.lower(state, reals[0], rng)
  lower_s, lower_cpu_s = time.perf_counter() - start, time.process_time() - cpu
  start, cpu = time.perf_counter(), time.process_time()
  compiled = lowered.compile()
  compile_s, compile_cpu_s = time.perf_counter() - start, time.process_time() - cpu

  extra = {"config": args.config, "overrides": args.override, "batch": batch, "cycle_steps": cycle,
           "r1_every": regs.r1_every, "pl_every": regs.pl_every, "style_mixing": regs.style_mixing,
           "init_s": round(init_s, 2), "init_cpu_s": round(init_cpu_s, 2), "lower_s": round(lower_s, 2),
           "lower_cpu_s": round(lower_cpu_s, 2), "compile_s": round(compile_s, 2),
           "compile_cpu_s": round(compile_cpu_s, 2),
           "render_ms": round(1e3 * statistics.median(render_times), 2)}
  holder = [state]
  by_kind: dict[str, list[float]] = {}
  cpu_by_kind: dict[str, list[float]] = {}

  def kind(step: int) -> str:
    names = [n for n, every in (("r1", regs.r1_every), ("pl", regs.pl_every)) if every and step % every == 0]
    return "+".join(names) or "plain"

  def run_cycle(record: bool):
    steps = []
    for i in range(cycle):
      step = int(jax.device_get(holder[0].step))
      t0, c0 = time.perf_counter(), time.process_time()
      holder[0], metrics = compiled(holder[0], reals[i], parallel.step_rng(config.seed, step))
      jax.block_until_ready(metrics)
      steps.append(time.perf_counter() - t0)
      if record:
        by_kind.setdefault(kind(step), []).append(steps[-1])
        cpu_by_kind.setdefault(kind(step), []).append(time.process_time() - c0)
    return sum(steps) / cycle

  if args.step:
    run_cycle(record=False)   # warm-up: every branch runs once
    times = [run_cycle(record=True) for _ in range(args.cycles)]
    extra.update(kind_summary(by_kind, batch))
    extra.update({f"cpu_{k}": v for k, v in kind_summary(cpu_by_kind, batch).items()})
  if args.breakdown:
    extra.update(breakdown(engine, holder[0], reals[0], args.piece_calls))
  extra.update(load_average_before=load_before, load_average_after=load_average())
  if args.step:
    report(f"gan_step_{args.config}", times, images_per_step=batch, framework="jax", jax_version=jax.__version__,
           devices=mesh.devices.size, **extra)
  else:
    import json
    print(json.dumps({"name": f"gan_step_{args.config}_breakdown", "framework": "jax", **extra}), flush=True)


if __name__ == "__main__":
  main()
