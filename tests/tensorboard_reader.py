"""Reads scalars back from TensorBoard event files (TFRecord framing + Event protos) without TensorFlow."""
import pathlib
import struct

from tensorboardX.proto import event_pb2


def read_events(logdir):
  for path in sorted(pathlib.Path(logdir).glob("events.out.tfevents.*")):
    data = path.read_bytes()
    offset = 0
    while offset + 12 <= len(data):
      (length,) = struct.unpack("<Q", data[offset:offset + 8])
      payload = data[offset + 12: offset + 12 + length]
      offset += 12 + length + 4
      event = event_pb2.Event()
      event.ParseFromString(payload)
      yield event


def read_scalars(logdir) -> dict[str, list[tuple[int, float]]]:
  scalars: dict[str, list[tuple[int, float]]] = {}
  for event in read_events(logdir):
    for value in event.summary.value:
      if value.HasField("simple_value"):
        scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
  return scalars
