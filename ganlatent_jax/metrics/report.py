"""Results tables over seeds: mean ± sample std of named scores, read from the runs' metrics.json files.

Shared by the launch scripts that reproduce the README's tables (`launch/sre_table.py`), so a table is always the
aggregation of files a user can inspect, never numbers typed in by hand.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any, Mapping, Sequence

# Score name in a table → key in a set of directions' results: the encoder protocol's
# (metrics.encoder_protocol.evaluate_directions) and the generated-domain scores beside them
# (metrics.generated_domain.generated_domain_scores; direction recovery only on an oracle generator).
SCORE_KEYS = {"MIG": "mig", "FactorVAE": "factor_vae_eval_accuracy", "DCI": "dci_disentanglement",
              "β-VAE": "beta_vae_eval_accuracy",
              "gen. MIG": "generated_mig", "gen. DCI": "generated_dci_disentanglement",
              "gen. FactorVAE": "generated_factor_vae_eval_accuracy",
              "recovery mean abs cos": "recovery_mean_abs_cos", "recovered (abs cos ≥ 0.9)": "recovery_fraction"}

# The columns of a directions table: the encoder protocol's scores, then the generated-domain ones; on an oracle
# generator also direction recovery.
DIRECTION_SCORES = ("MIG", "FactorVAE", "DCI", "gen. MIG", "gen. DCI", "gen. FactorVAE")
RECOVERY_SCORES = ("recovery mean abs cos", "recovered (abs cos ≥ 0.9)")


def direction_scores(generator: str) -> tuple[str, ...]:
  """The columns of a directions table on `generator` (a generators.load name): recovery only on an oracle."""
  from ganlatent_jax.generators import oracle
  return DIRECTION_SCORES + (RECOVERY_SCORES if oracle.is_oracle_name(generator) else ())


def read_json(path: str) -> dict[str, Any]:
  """A metrics.json (or any JSON file), local or gs://."""
  from ganlatent_jax import io
  return json.loads(io.read_text(path))


def lookup(result: Mapping[str, Any], path: str) -> Any:
  """result['a']['b'] for path 'a/b', with a KeyError naming the missing part and the keys that exist."""
  value: Any = result
  for part in path.split("/"):
    if not isinstance(value, Mapping) or part not in value:
      keys = sorted(value) if isinstance(value, Mapping) else type(value).__name__
      raise KeyError(f"{path!r}: no {part!r} (have {keys})")
    value = value[part]
  return value


def mean_std(values: Sequence[float]) -> tuple[float, float]:
  """Mean and sample standard deviation (ddof = 1; 0 for a single value)."""
  values = [float(v) for v in values]
  if not values:
    raise ValueError("mean_std of no values")
  mean = sum(values) / len(values)
  if len(values) == 1:
    return mean, 0.0
  return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def format_mean_std(values: Sequence[float], digits: int = 3) -> str:
  """'mean ± std'; one value is printed alone (its spread is unknown, not zero — '± 0.000' would claim it is)."""
  mean, std = mean_std(values)
  if len(values) == 1:
    return f"{mean:.{digits}f}"
  return f"{mean:.{digits}f} ± {std:.{digits}f}"


def collect(rows: Mapping[str, Sequence[tuple[str, str]]], scores: Sequence[str], missing_ok: bool = False,
            keys: Mapping[str, str] | None = None) -> dict[str, dict[str, list]]:
  """{row: [(metrics.json path, entry inside it), ...]} → {row: {score: [value per run]}}.

  `entry` is the key holding one set of directions' results in that file (e.g. 'init_directions'). A score a result
  lacks (or an entry a file lacks) is an error naming it, unless `missing_ok` (rows that have only some of the
  columns, e.g. a probe row with generated-domain scores and no encoder protocol; runs that predate an entry): then
  it is left out and the table prints '—'. `keys` maps a score to its key (a 'a/b' path) where a table's results
  name it otherwise than SCORE_KEYS.
  """
  keys = {**SCORE_KEYS, **(keys or {})}
  table: dict[str, dict[str, list]] = {}
  for row, runs in rows.items():
    table[row] = {score: [] for score in scores}
    for path, entry in runs:
      try:
        result = lookup(read_json(path), entry)
      except KeyError:
        if missing_ok:   # a run older than the entry (e.g. before generated-domain scores existed)
          continue
        raise
      for score in scores:
        try:
          value = lookup(result, keys.get(score, score))
        except KeyError:
          if missing_ok:
            continue
          raise
        table[row][score].append(float(value))
  return table


def collect_present(rows: Mapping[str, Sequence[tuple[str, str]]], scores: Sequence[str],
                    keys: Mapping[str, str] | None = None) -> dict[str, dict[str, list]]:
  """`collect` of the rows whose files exist, each score where the results have it (a probe row has no encoder
  protocol; an older run may lack the generated-domain scores; MIG on too few points is 'mig_error'); rows with
  nothing to show are left out."""
  done = {row: [run for run in runs if os.path.exists(run[0])] for row, runs in rows.items()}
  table = collect({row: runs for row, runs in done.items() if runs}, scores, missing_ok=True, keys=keys)
  return {row: values for row, values in table.items() if any(values.values())}


def markdown_table(table: Mapping[str, Mapping[str, Sequence[float]]], scores: Sequence[str],
                   first_column: str = "directions", digits: int = 3,
                   last_column: tuple[str, Mapping[str, str]] | None = None) -> str:
  """One row per entry of `table`, 'mean ± std' per score ('—' where a row has none) and the number of runs;
  `last_column` = (header, {row: text}) appends a column of given text, e.g. the paper's numbers ('—' if absent)."""
  header, texts = last_column if last_column else (None, {})
  extra = lambda text: f" {text} |" if header else ""
  lines = [f"| {first_column} | " + " | ".join(scores) + " | runs |" + extra(header),
           "| --- | " + " | ".join("---" for _ in scores) + " | --- |" + extra("---")]
  for row, values in table.items():
    counts = {len(values[s]) for s in scores if values.get(s)}
    lines.append(f"| {row} | " + " | ".join(format_mean_std(values[s], digits) if values.get(s) else "—"
                                            for s in scores)
                 + f" | {','.join(str(c) for c in sorted(counts))} |" + extra(texts.get(row, "—")))
  return "\n".join(lines)


def write_table(out: str, payload: Mapping[str, Any], text: str) -> None:
  """A table launcher's outputs: OUT/table.json (every value) and OUT/table.md (the Markdown), written atomically."""
  from ganlatent_jax import io
  io.write_json(os.path.join(out, "table.json"), payload)
  io.write_text(os.path.join(out, "table.md"), text + "\n")
