"""TensorBoard event files of scalars and images, written directly (no TensorFlow, tensorboardX or torch).

An event file is a sequence of TFRecords, each holding one serialized `tensorflow.Event` protocol
buffer. Scalars and PNG images are all we log, so the few protobuf fields they need are encoded here
by hand:

  Event:   wall_time (1, double), step (2, int64), file_version (3, string), summary (5, Summary)
  Summary: value (1, repeated Value);  Value: tag (1, string), simple_value (2, float), image (4, Image)
  Image:   height (1, int32), width (2, int32), colorspace (3, int32: 3 = RGB), encoded_image_string (4, bytes)

Why not tensorboardX: importing it imports torch when torch is installed (~2 s in every training
process), and it writes `gs://` files only through google-cloud-storage, while ours go through the
same path layer (storage.GrowingObject) as every other file.
"""
from __future__ import annotations

import os
import socket
import struct
import time

from asl_motiongpt import storage

FILE_VERSION = "brain.Event:2"


def _crc32c_table() -> list[int]:
  table = []
  for byte in range(256):
    crc = byte
    for _ in range(8):
      crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1  # Castagnoli polynomial, reflected
    table.append(crc)
  return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
  crc = 0xFFFFFFFF
  for byte in data:
    crc = _TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
  return crc ^ 0xFFFFFFFF


def masked_crc(data: bytes) -> int:
  """TFRecord's checksum: CRC32C rotated and offset, so a CRC stored inside data does not collide."""
  crc = crc32c(data)
  return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tf_record(payload: bytes) -> bytes:
  length = struct.pack("<Q", len(payload))
  return length + struct.pack("<I", masked_crc(length)) + payload + struct.pack("<I", masked_crc(payload))


def _varint(value: int) -> bytes:
  value &= (1 << 64) - 1  # negative int64 as two's complement, like protobuf
  out = bytearray()
  while True:
    bits, value = value & 0x7F, value >> 7
    out.append(bits | (0x80 if value else 0))
    if not value:
      return bytes(out)


def _field(number: int, wire_type: int) -> bytes:
  return _varint(number << 3 | wire_type)


def _bytes_field(number: int, data: bytes) -> bytes:
  return _field(number, 2) + _varint(len(data)) + data


def scalar_event(tag: str, value: float, step: int, wall_time: float) -> bytes:
  summary_value = _bytes_field(1, tag.encode("utf-8")) + _field(2, 5) + struct.pack("<f", value)
  summary = _bytes_field(1, summary_value)
  return _field(1, 1) + struct.pack("<d", wall_time) + _field(2, 0) + _varint(step) + _bytes_field(5, summary)


def image_event(tag: str, png: bytes, height: int, width: int, step: int, wall_time: float) -> bytes:
  image = _field(1, 0) + _varint(height) + _field(2, 0) + _varint(width) + _field(3, 0) + _varint(3) + \
      _bytes_field(4, png)
  summary = _bytes_field(1, _bytes_field(1, tag.encode("utf-8")) + _bytes_field(4, image))
  return _field(1, 1) + struct.pack("<d", wall_time) + _field(2, 0) + _varint(step) + _bytes_field(5, summary)


def version_event(wall_time: float) -> bytes:
  return _field(1, 1) + struct.pack("<d", wall_time) + _bytes_field(3, FILE_VERSION.encode())


class EventWriter:
  """Scalars into `<logdir>/events.out.tfevents.<time>.<host>` (a new file per run, as TensorBoard
  expects: a resumed stage adds a file beside the first and TensorBoard shows both)."""

  def __init__(self, logdir: str):
    now = time.time()
    name = f"events.out.tfevents.{int(now)}.{socket.gethostname()}.{os.getpid()}"
    self.path = storage.join(logdir, name)
    self.file = storage.GrowingObject(self.path, binary=True)
    self.file.write(tf_record(version_event(now)))

  def add_scalar(self, tag: str, value: float, step: int) -> None:
    self.file.write(tf_record(scalar_event(tag, float(value), int(step), time.time())))

  def add_image(self, tag: str, png: bytes, height: int, width: int, step: int) -> None:
    """A PNG-encoded RGB image (TensorBoard's Images tab: one slider over the steps per tag)."""
    self.file.write(tf_record(image_event(tag, png, int(height), int(width), int(step), time.time())))

  def flush(self) -> None:
    self.file.flush()

  def close(self) -> None:
    self.file.close()
