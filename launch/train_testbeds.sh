#!/usr/bin/env bash
# Trains the testbed generators in the background (resumes from the workdirs if interrupted), then exports them:
#   bash launch/train_testbeds.sh [shapes3d] [dsprites]      # default: both
#   bash launch/train_testbeds.sh export                     # after (or during) training: write the assets
# Workdirs: $TESTBED_RUNS/{shapes3d,dsprites} (default /work/testbed_runs); logs: $TESTBED_RUNS/NAME.log.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
RUNS=${TESTBED_RUNS:-/work/testbed_runs}
mkdir -p "$RUNS"
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(shapes3d dsprites)
for name in "${names[@]}"; do
  if [ "$name" = export ]; then
    # The classifier budgets of the shipped model cards (MODEL_CARD.md of each testbed).
    for testbed in shapes3d:400 dsprites:4000; do
      name_=${testbed%%:*}
      [ -d "$RUNS/$name_/checkpoints" ] && "$PYTHON" -m ganlatent_jax.testbeds export \
          --workdir="$RUNS/$name_" --name="$name_" --classifier_steps="${testbed##*:}"
    done
    continue
  fi
  nohup "$PYTHON" -m ganlatent_jax.main --config="configs/gan_$( [ "$name" = shapes3d ] && echo 3dshapes || echo "$name").py" --workdir="$RUNS/$name" \
      --config.progress_bar=False >> "$RUNS/$name.log" 2>&1 &
  echo "$name: pid $! (log $RUNS/$name.log)"
done
