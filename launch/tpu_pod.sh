#!/usr/bin/env bash
# Runs one ganlatent_jax config on every worker of a Cloud TPU VM pod slice (e.g. v4-32 = 4 hosts × 4 chips).
#
#   TPU_NAME=my-v4-32 ZONE=us-central2-b BUCKET=my-bucket \
#     bash launch/tpu_pod.sh --config=configs/sre_3dshapes.py --workdir=gs://my-bucket/runs/sre_v4_32
#   (or --workdir=/gcs/runs/sre_v4_32, the same bucket through the gcsfuse mount of step 2)
#
# 1. ships this checkout (git archive of HEAD) to every worker and installs it with `pip install -e '.[tpu]'`;
# 2. mounts gs://$BUCKET at /gcs on every worker (gcsfuse), for a /gcs/... workdir: the run directory must be one
#    directory that every host sees — orbax writes each host's shards there, process 0 writes the rest (pictures,
#    metrics.json, …). A gs://... workdir needs no mount: io and orbax write to the bucket directly ('.[tpu]'
#    installs gcsfs);
# 3. starts `python -m ganlatent_jax.main --jax_distributed ARGS` on all workers at once. On TPU VMs jax finds the
#    coordinator and the process ids from the TPU metadata; the config runs unchanged (its batch_size is the global
#    batch and must divide the pod's chip count, which the run checks and names).
# A killed or preempted run resumes from the newest checkpoint when the same command is run again.
set -euo pipefail
: "${TPU_NAME:?set TPU_NAME}" "${ZONE:?set ZONE}" "${BUCKET:?set BUCKET (the run directory lives in it)}"
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: $0 --config=configs/<method>_<data>.py --workdir=/gcs/... [--config.key=value ...]" >&2; exit 2; }
PROJECT_ARGS=${PROJECT:+--project=$PROJECT}
ssh_all() { gcloud compute tpus tpu-vm ssh "$TPU_NAME" --zone="$ZONE" $PROJECT_ARGS --worker=all --command="$1"; }

archive=$(mktemp --suffix=.tar.gz)
git archive --format=tar.gz -o "$archive" HEAD
gcloud compute tpus tpu-vm scp "$archive" "$TPU_NAME":ganlatent_jax.tar.gz --zone="$ZONE" $PROJECT_ARGS --worker=all
rm -f "$archive"
ssh_all "set -e; rm -rf ~/ganlatent_jax && mkdir -p ~/ganlatent_jax && tar xzf ~/ganlatent_jax.tar.gz -C ~/ganlatent_jax \
  && cd ~/ganlatent_jax && pip install -q -e '.[tpu]' \
  && (mountpoint -q /gcs || (sudo mkdir -p /gcs && sudo chown \$USER /gcs && gcsfuse --implicit-dirs $BUCKET /gcs))"
quoted=$(printf ' %q' "$@")
ssh_all "cd ~/ganlatent_jax && python -m ganlatent_jax.main --jax_distributed$quoted"
