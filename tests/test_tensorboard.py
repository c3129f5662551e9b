"""Our TensorBoard event files (train/tensorboard.py, written without tensorboardX) are what
TensorBoard reads: TFRecords whose checksums verify and whose payloads parse as `Event` protos."""
import struct

from asl_motiongpt.train import tensorboard
from asl_motiongpt.train.logging_utils import MetricsWriter


def _records(path):
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
  events = [Event.FromString(r) for r in _records(event_file)]
  assert events[0].file_version == "brain.Event:2"
  scalars = [(e.step, v.tag, v.simple_value) for e in events[1:] for v in e.summary.value]
  assert scalars == [(0, "train/loss", 2.5), (0, "train/lr", struct.unpack("<f", struct.pack("<f", 1e-3))[0]),
                     (7, "eval/loss", -0.125), (2**40, "train/loss", 1.0)]
  assert all(e.wall_time > 1.6e9 for e in events)
