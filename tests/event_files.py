"""Reading back the TensorBoard event files we write (train/tensorboard.py): each TFRecord's
checksums verified, the payloads parsed as TensorBoard's `Event` protos (tensorboardX ships them)."""
import io
import os
import struct

from asl_motiongpt.train import tensorboard


def records(path) -> list[bytes]:
  data = open(path, "rb").read()
  out, at = [], 0
  while at < len(data):
    header = data[at:at + 8]
    (length,) = struct.unpack("<Q", header)
    assert struct.unpack("<I", data[at + 8:at + 12])[0] == tensorboard.masked_crc(header)
    payload = data[at + 12:at + 12 + length]
    assert struct.unpack("<I", data[at + 12 + length:at + 16 + length])[0] == tensorboard.masked_crc(payload)
    out.append(payload)
    at += 16 + length
  return out


def events(logdir) -> list:
  from tensorboardX.proto.event_pb2 import Event
  files = sorted(name for name in os.listdir(logdir) if "tfevents" in name)
  return [Event.FromString(record) for name in files for record in records(os.path.join(logdir, name))]


def images(logdir) -> dict:
  """(tag, step) -> the PIL image logged there."""
  from PIL import Image
  out = {}
  for event in events(logdir):
    for value in event.summary.value:
      if value.HasField("image"):
        image = Image.open(io.BytesIO(value.image.encoded_image_string))
        assert image.size == (value.image.width, value.image.height)
        out[(value.tag, event.step)] = image
  return out
