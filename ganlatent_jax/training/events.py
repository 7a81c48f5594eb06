"""Reading what `training.writer.MetricWriter` wrote: the TensorBoard event files of a workdir (local or gs://), parsed
from their TFRecord framing with tensorboardX's protos — no TensorFlow. The run report, the README tables' launchers
and the tests read training curves through these."""
from __future__ import annotations

import os
import struct
from typing import Any, Iterable


def read_events(logdir: str | os.PathLike) -> Iterable[Any]:
  """TensorBoard Event protos of every event file in `logdir` (TFRecord framing; no TensorFlow needed).

  A file being written may end in a partial record: reading stops there instead of failing.
  """
  from tensorboardX.proto import event_pb2

  from ganlatent_jax import io
  for path in io.glob(logdir, "events.out.tfevents.*"):
    data = io.read_bytes(path)
    offset = 0
    while offset + 12 <= len(data):
      (length,) = struct.unpack("<Q", data[offset:offset + 8])
      if offset + 12 + length + 4 > len(data):
        break
      event = event_pb2.Event()
      try:
        event.ParseFromString(data[offset + 12: offset + 12 + length])
      except Exception:  # noqa: BLE001 — protobuf's DecodeError; a damaged record ends the file's useful part
        break
      offset += 12 + length + 4
      yield event


SCALARS_RECORD = "scalars.json"   # a finished run's scalars without its event files' images (`write_scalars_record`)


def read_scalars(logdir: str | os.PathLike) -> dict[str, list[tuple[int, float]]]:
  """{tag: [(step, value), ...]} of every scalar logged to the event files in `logdir`, in step order, one value per
  step: a run resumed from a checkpoint logs the steps after that checkpoint again in a new event file, and the
  newest file's value is the one that belongs to the run as it continued (files are read oldest first: their names
  start with the time they were opened). A workdir kept without its event files (a committed results/ cell) is read
  from its `scalars.json` record."""
  from ganlatent_jax import io
  if not io.glob(logdir, "events.out.tfevents.*") and io.exists(os.path.join(logdir, SCALARS_RECORD)):
    import json
    return {tag: [(int(step), float(value)) for step, value in points]
            for tag, points in json.loads(io.read_text(os.path.join(logdir, SCALARS_RECORD))).items()}
  scalars: dict[str, dict[int, float]] = {}
  for event in read_events(logdir):
    for value in event.summary.value:
      if value.HasField("simple_value"):
        scalars.setdefault(value.tag, {})[int(event.step)] = float(value.simple_value)
  return {tag: sorted(points.items()) for tag, points in scalars.items()}


def write_scalars_record(logdir: str | os.PathLike) -> str | None:
  """Writes `logdir/scalars.json` = `read_scalars(logdir)`: the curves a table reads, kilobytes where the event files
  (with their images) are megabytes, so a finished cell can be committed without them. None when no event file."""
  from ganlatent_jax import io
  if not io.glob(logdir, "events.out.tfevents.*"):
    return None
  path = os.path.join(logdir, SCALARS_RECORD)
  io.write_json(path, read_scalars(logdir), indent=None)
  return path


def read_latest_images(logdir: str | os.PathLike) -> dict[str, tuple[int, bytes]]:
  """{tag: (step, PNG bytes)} of the last image logged under each tag."""
  images: dict[str, tuple[int, bytes]] = {}
  for event in read_events(logdir):
    for value in event.summary.value:
      if value.HasField("image") and (value.tag not in images or event.step >= images[value.tag][0]):
        images[value.tag] = (int(event.step), bytes(value.image.encoded_image_string))
  return images
