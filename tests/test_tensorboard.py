"""Our TensorBoard event files (train/tensorboard.py, written without tensorboardX) are what
TensorBoard reads: TFRecords whose checksums verify and whose payloads parse as `Event` protos."""
import struct

from asl_motiongpt.train import tensorboard
from asl_motiongpt.train.logging_utils import MetricsWriter
from event_files import images, records


def test_crc32c_matches_the_standard_check_value():
  assert tensorboard.crc32c(b"123456789") == 0xE3069283  # the CRC-32C catalogue's check value
  assert tensorboard.crc32c(b"") == 0


def test_scalars_parse_as_tensorboard_events(tmp_path):
  from tensorboardX.proto.event_pb2 import Event
  writer = MetricsWriter(str(tmp_path / "logs"))
  writer.write(0, {"loss": 2.5, "lr": 1e-3})
  writer.write(7, {"loss": -0.125}, prefix="eval")
  writer.write(2**40, {"loss": 1.0})
  writer.close()
  (event_file,) = [p for p in (tmp_path / "logs").iterdir() if "tfevents" in p.name]
  events = [Event.FromString(r) for r in records(event_file)]
  assert events[0].file_version == "brain.Event:2"
  scalars = [(e.step, v.tag, v.simple_value) for e in events[1:] for v in e.summary.value]
  assert scalars == [(0, "train/loss", 2.5), (0, "train/lr", struct.unpack("<f", struct.pack("<f", 1e-3))[0]),
                     (7, "eval/loss", -0.125), (2**40, "train/loss", 1.0)]
  assert all(e.wall_time > 1.6e9 for e in events)


def test_images_parse_as_tensorboard_events(tmp_path):
  """A picture logged at a step is a PNG TensorBoard shows under its tag, pixel for pixel."""
  import numpy as np
  from PIL import Image
  writer = MetricsWriter(str(tmp_path / "logs"))
  drawn = Image.fromarray(np.arange(40 * 30 * 3, dtype=np.uint8).reshape(30, 40, 3))
  writer.write(5, {"loss": 1.0}, prefix="eval")
  writer.write_image(5, "eval/generated_sign", drawn)
  writer.close()
  logged = images(tmp_path / "logs")
  assert list(logged) == [("eval/generated_sign", 5)]
  np.testing.assert_array_equal(np.asarray(logged[("eval/generated_sign", 5)].convert("RGB")), np.asarray(drawn))
