"""An interactive direction explorer: a local web page with a slider per direction.

  python -m ganlatent_jax.explore --workdir=W                    # W's generator and W/directions.npz
  python -m ganlatent_jax.explore --generator=testbed:shapes3d --directions=W/directions.npz [--port=8000]

Open the printed address (http://127.0.0.1:PORT/). Every change of a slider, of the truncation or of the class
re-renders the image through one jitted generator function (compiled once per direction space; a BigGAN truncation
is static, so each new truncation value compiles once). "Resample" draws a new latent. The server is Python's
standard-library HTTP server bound to 127.0.0.1 only; the page has no external assets.

Truncation: in W towards w̄ for generators with a W space (StyleGAN2), whatever the directions' space; BigGAN's own
truncation (truncated noise and the matching batch-norm statistics) for class-conditional generators; z scaled by ψ
for the other generators.
"""
from __future__ import annotations

import functools
import http.server
import io
import json
import threading
import time
import urllib.parse

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags

from ganlatent_jax.directions.base import Directions, shift_latents
from ganlatent_jax.generators.base import Generator

HOST = "127.0.0.1"

@functools.partial(jax.jit, static_argnames=("space", "layers", "biggan_truncation"))
def render(gen: Generator, matrix: jax.Array, z: jax.Array, coefficients: jax.Array, psi: jax.Array,
           w_avg: jax.Array, class_ids: jax.Array, *, space: str, layers: tuple[int, int] | None,
           biggan_truncation: float | None) -> jax.Array:
  """Images (the generator's raw range) of z moved by matrix·coefficients, with truncation ψ (module docstring)."""
  if biggan_truncation is not None:  # z is already truncated noise; the truncation picks the BN statistics
    return gen(shift_latents(z, matrix, coefficients), class_vector=class_ids, truncation=biggan_truncation)
  if "w" not in gen.info.latent_spaces:
    return gen(shift_latents(z * psi, matrix, coefficients))
  if space == "z":
    z = shift_latents(z, matrix, coefficients)
  w = gen.mapping(z)
  w = w_avg + psi * (w - w_avg)
  if space == "w+":
    w = jnp.broadcast_to(w[:, None, :], (w.shape[0], gen.info.num_ws, w.shape[-1]))
  if space != "z":
    w = shift_latents(w, matrix, coefficients, layers)
  return gen.synthesis(w)


@jax.jit
def _mean_w(gen: Generator, rng: jax.Array) -> jax.Array:
  from ganlatent_jax.directions import spaces
  return spaces.mean_w(gen, rng)


class Explorer:
  """A generator and its directions, rendering one image per (seed, coefficients, truncation, class)."""

  def __init__(self, gen: Generator, directions: Directions, max_directions: int = 20):
    if directions.latent_dim != (gen.info.w_dim if directions.space != "z" else gen.latent_dim):
      raise ValueError(f"directions of dimension {directions.latent_dim} in space {directions.space!r} do not fit "
                       f"the {gen.info.family} generator (z: {gen.latent_dim}, w: {gen.info.w_dim})")
    if directions.space != "z" and "w" not in gen.info.latent_spaces:
      raise ValueError(f"{directions.space!r} directions need a generator with a W space; "
                       f"a {gen.info.family} generator has {gen.info.latent_spaces}")
    self.gen = gen
    self.directions = directions.select(range(min(max_directions, directions.num_directions)))
    self.num_classes = gen.info.num_classes
    self._matrix = jnp.asarray(self.directions.matrix)
    if "w" in gen.info.latent_spaces and not self.num_classes:
      self._w_avg = _mean_w(gen, jax.random.key(1))
    else:
      self._w_avg = jnp.zeros((1,), jnp.float32)
    self._lock = threading.Lock()  # one render at a time: the CPU is the bottleneck, not the server

  @property
  def num_directions(self) -> int:
    return self.directions.num_directions

  def _z(self, seed: int, truncation: float) -> jax.Array:
    rng = jax.random.key(seed)
    if self.num_classes:
      from ganlatent_jax.generators.biggan import truncated_noise
      return truncated_noise(rng, 1, truncation, self.gen.latent_dim)
    return self.gen.sample_z(rng, 1)

  def image(self, seed: int, coefficients, truncation: float = 1.0, class_id: int = 0) -> np.ndarray:
    """One HWC uint8 image."""
    coefficients = np.zeros(self.num_directions, np.float32) if coefficients is None else np.asarray(
        coefficients, np.float32)
    if coefficients.shape != (self.num_directions,):
      raise ValueError(f"{coefficients.shape[0]} coefficients for {self.num_directions} directions")
    if not 0.0 < truncation <= 1.0:
      raise ValueError(f"truncation {truncation} is not in (0, 1]")
    if self.num_classes and not 0 <= class_id < self.num_classes:
      raise ValueError(f"class {class_id} is not in 0..{self.num_classes - 1}")
    with self._lock:
      images = render(self.gen, self._matrix, self._z(seed, truncation), jnp.asarray(coefficients[None]),
                      jnp.float32(truncation), self._w_avg, jnp.full((1,), class_id, jnp.int32),
                      space=self.directions.space, layers=self.directions.layers,
                      biggan_truncation=round(float(truncation), 4) if self.num_classes else None)
      images = np.asarray(images)
    from ganlatent_jax.viz import to_display
    return (to_display(images, self.gen.info.output_range)[0] * 255.0 + 0.5).astype(np.uint8)

  def png(self, *args, **kwargs) -> bytes:
    from PIL import Image
    buffer = io.BytesIO()
    Image.fromarray(self.image(*args, **kwargs)).save(buffer, format="PNG")
    return buffer.getvalue()


_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>ganlatent_jax explorer</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222;display:flex;gap:2em;flex-wrap:wrap}
#controls{max-width:34em}h3{overflow-wrap:anywhere;font-size:1em}
#view img{width:384px;height:384px;image-rendering:pixelated;border:1px solid #ccc;background:#eee}
.row{display:flex;align-items:center;gap:.5em;margin:.15em 0}.row label{width:7em}.row output{width:3.5em}
input[type=range]{width:260px}.muted{color:#777;font-size:.85em}button{margin:.3em .3em .3em 0}
</style></head><body>
<div id="view"><img id="image" alt="generated image"><p class="muted" id="status">…</p>
<button id="resample">Resample latent</button><button id="reset">Reset sliders</button></div>
<div id="controls"><h3 style="margin-top:0">__TITLE__</h3>
<div class="row"><label for="truncation">truncation ψ</label><input type="range" id="truncation" min="0.05" max="1"
 step="0.05" value="__TRUNCATION__"><output id="truncation_value">__TRUNCATION__</output></div>
__CLASS_ROW__
<div class="row"><label for="seed">latent seed</label><input type="number" id="seed" value="0" min="0"
 style="width:7em"></div>
<h4>directions</h4><div id="sliders">__SLIDERS__</div></div>
<script>
const $ = (id) => document.getElementById(id);
const sliders = Array.from(document.querySelectorAll("input.direction"));
let busy = false, pending = false, rendered = 0;
function query() {
  const p = new URLSearchParams({seed: $("seed").value, truncation: $("truncation").value,
    c: sliders.map((s) => s.value).join(",")});
  if ($("class_id")) p.set("class_id", $("class_id").value);
  return p.toString();
}
async function update() {
  if (busy) { pending = true; return; }
  busy = true;
  try {
    const q = query();
    const response = await fetch("/render?" + q);
    if (!response.ok) { $("status").textContent = await response.text(); return; }
    const blob = await response.blob();
    const old = $("image").src;
    $("image").src = URL.createObjectURL(blob);
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    rendered += 1;
    $("image").dataset.rendered = rendered;
    $("image").dataset.query = q;  // what the shown image is of (tests wait for it)
    $("status").textContent = "rendered in " + response.headers.get("X-Render-Ms") + " ms";
  } finally {
    busy = false;
    if (pending) { pending = false; update(); }
  }
}
for (const input of document.querySelectorAll("input")) {
  input.addEventListener("input", () => {
    const out = $(input.id + "_value"); if (out) out.textContent = input.value; update();
  });
}
$("resample").addEventListener("click", () => { $("seed").value = Math.floor(Math.random() * 1e6); update(); });
$("reset").addEventListener("click", () => {
  for (const s of sliders) { s.value = 0; $(s.id + "_value").textContent = "0"; } update();
});
update();
</script></body></html>
"""


def page(explorer: Explorer, title: str, truncation: float, span: float, class_id: int = 0) -> str:
  """The explorer's HTML: everything inline, the image fetched from /render."""
  import html
  step = round(span / 30, 3)
  sliders = "".join(
      f'<div class="row"><label for="d{k}">direction {k}</label><input type="range" class="direction" id="d{k}" '
      f'min="{-span}" max="{span}" step="{step}" value="0"><output id="d{k}_value">0</output></div>'
      for k in range(explorer.num_directions))
  class_row = ("" if not explorer.num_classes else
               f'<div class="row"><label for="class_id">class</label><input type="number" id="class_id" min="0" '
               f'max="{explorer.num_classes - 1}" value="{class_id}" style="width:7em"></div>')
  return (_PAGE.replace("__TITLE__", html.escape(title)).replace("__TRUNCATION__", f"{truncation:g}")
          .replace("__CLASS_ROW__", class_row).replace("__SLIDERS__", sliders))


def make_server(explorer: Explorer, port: int = 0, title: str = "directions", truncation: float = 0.8,
                span: float = 3.0, class_id: int = 0) -> http.server.ThreadingHTTPServer:
  """An HTTP server on 127.0.0.1:`port` (0 = any free port; see `server.server_address`); call serve_forever()."""
  html_page = page(explorer, title, truncation, span, class_id).encode("utf-8")

  class Handler(http.server.BaseHTTPRequestHandler):
    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None):
      self.send_response(status)
      self.send_header("Content-Type", content_type)
      self.send_header("Content-Length", str(len(body)))
      self.send_header("Cache-Control", "no-store")
      for key, value in (headers or {}).items():
        self.send_header(key, value)
      self.end_headers()
      self.wfile.write(body)

    def do_GET(self):  # noqa: N802 — http.server's naming
      url = urllib.parse.urlsplit(self.path)
      if url.path in ("/", "/index.html"):
        return self._send(200, html_page, "text/html; charset=utf-8")
      if url.path == "/info":
        info = {"num_directions": explorer.num_directions, "num_classes": explorer.num_classes,
                "space": explorer.directions.space, "family": explorer.gen.info.family}
        return self._send(200, json.dumps(info).encode(), "application/json")
      if url.path != "/render":
        return self._send(404, b"not found", "text/plain")
      params = urllib.parse.parse_qs(url.query)
      try:
        coefficients = [float(v) for v in params.get("c", [""])[0].split(",") if v != ""]
        start = time.perf_counter()
        body = explorer.png(int(params.get("seed", ["0"])[0]), coefficients or None,
                            float(params.get("truncation", ["1"])[0]), int(params.get("class_id", ["0"])[0]))
        milliseconds = (time.perf_counter() - start) * 1000.0
      except ValueError as e:
        return self._send(400, str(e).encode(), "text/plain")
      return self._send(200, body, "image/png", {"X-Render-Ms": f"{milliseconds:.0f}"})

    def log_message(self, format, *args):  # noqa: A002 — quiet: one line per slider move would flood the terminal
      pass

  return http.server.ThreadingHTTPServer((HOST, port), Handler)


def _define_flags():
  """Defined when run as a program only: `import ganlatent_jax.explore` (its server and renderer, in tests) leaves
  absl's flags alone, so it can share a process with the other entry points (which also define --workdir)."""
  import types
  return types.SimpleNamespace(
      generator=flags.DEFINE_string("generator", "", "Generator (checkpoint, converted directory or testbed:NAME); "
                                    "default: the --workdir run's config.generator."),
      directions=flags.DEFINE_string("directions", "", "A directions.npz; default: WORKDIR/directions.npz."),
      workdir=flags.DEFINE_string("workdir", "", "A run's directory: its generator and directions are the defaults."),
      port=flags.DEFINE_integer("port", 8000, "Port on 127.0.0.1 (0: any free port)."),
      truncation=flags.DEFINE_float("truncation", 0.8, "Initial truncation ψ in (0, 1]."),
      span=flags.DEFINE_float("span", 3.0, "Each slider goes from −span to +span."),
      max_directions=flags.DEFINE_integer("max_directions", 20, "Sliders for the first N directions."),
      class_id=flags.DEFINE_integer("class_id", 0, "Initial class of a class-conditional generator."))


def serve(generator: str, directions_path: str, workdir: str = "", port: int = 8000, truncation: float = 0.8,
          span: float = 3.0, max_directions: int = 20, class_id: int = 0) -> None:
  """What the command does after its flags: the explorer of (generator, directions) — defaults from `workdir`'s
  config.json and directions.npz — served on 127.0.0.1:port until Ctrl-C."""
  import json as json_lib
  import os

  from ganlatent_jax import directions as directions_lib
  from ganlatent_jax import generators

  if workdir:
    config_path = os.path.join(workdir, "config.json")
    if not generator:
      if not os.path.isfile(config_path):
        raise app.UsageError(f"--workdir={workdir} has no config.json to take the generator from; give --generator")
      with open(config_path) as f:
        generator = json_lib.load(f).get("generator", "")
    directions_path = directions_path or os.path.join(workdir, "directions.npz")
  if not generator or not directions_path:
    raise app.UsageError("give --workdir, or --generator and --directions")
  explorer = Explorer(generators.load(generator), directions_lib.load(directions_path), max_directions)
  explorer.png(0, None, truncation, class_id)  # compile before the page asks for its first image
  server = make_server(explorer, port, title=f"{generator} — {directions_path}", truncation=truncation, span=span,
                       class_id=class_id)
  print(f"explorer on http://{HOST}:{server.server_address[1]}/  (Ctrl-C stops it)", flush=True)
  try:
    server.serve_forever()
  except KeyboardInterrupt:
    pass
  finally:
    server.server_close()


def run():
  args = _define_flags()

  def main(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    serve(args.generator.value, args.directions.value, args.workdir.value, args.port.value, args.truncation.value,
          args.span.value, args.max_directions.value, args.class_id.value)

  from ganlatent_jax import cli
  cli.run(main)


if __name__ == "__main__":
  run()
