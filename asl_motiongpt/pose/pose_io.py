"""`.pose` files (the pose-format library's binary format) <-> PoseSequence."""
from __future__ import annotations

import itertools
import os

import numpy as np
from pose_format import Pose
from pose_format.numpy.pose_body import NumPyPoseBody
from pose_format.pose_header import PoseHeader, PoseHeaderComponent, PoseHeaderDimensions

from asl_motiongpt.pose import skeletons
from asl_motiongpt.pose.sequence import PoseSequence


class PoseFileError(ValueError):
  """A `.pose` file that cannot be read; the message names the file."""


class UnknownLayoutError(PoseFileError):
  """A readable `.pose` file whose layout we do not map (its components are listed)."""


def read_pose(path: str | os.PathLike, person: int = 0) -> PoseSequence:
  """Reads one person of a `.pose` file, identifying its layout from the header."""
  try:
    with open(path, "rb") as handle:
      pose = Pose.read(handle.read())
  except FileNotFoundError:
    raise
  except Exception as e:  # pose-format raises struct/index errors on truncated files
    raise PoseFileError(f"{path}: not a readable .pose file ({type(e).__name__}: {e})") from e
  return from_pose_format(pose, person=person, source=str(path))


def from_pose_format(pose: Pose, person: int = 0, source: str = "<pose>") -> PoseSequence:
  header = pose.header
  signature = tuple((c.name, len(c.points)) for c in header.components)
  try:
    name = skeletons.identify(signature)
  except ValueError as e:
    raise UnknownLayoutError(f"{source}: {e}") from e
  people = pose.body.data.shape[1]
  if person >= people:
    raise PoseFileError(f"{source}: person {person} requested, file has {people}")
  data = np.asarray(np.ma.getdata(pose.body.data)[:, person], np.float32)
  confidence = np.asarray(pose.body.confidence[:, person], np.float32)
  points = tuple((c.name, p) for c in header.components for p in c.points)
  world = _world_columns(points, data.shape[-1])
  if world is not None:  # back to metres (see _world_columns)
    data[:, world] /= _world_scale(header.dimensions, data.shape[-1])
  known = skeletons.REGISTRY.get(name)
  return PoseSequence(data, confidence, float(pose.body.fps), name,
                      points=None if known is not None and known.points == points else points)


def to_pose_format(seq: PoseSequence, dimensions: tuple[int, int, int] | None = None) -> Pose:
  """Builds a pose-format `Pose` (one person) with a header describing `seq`'s skeleton."""
  if seq.points is None:
    components = [PoseHeaderComponent(c.name, list(c.points), list(c.limbs), _colors(len(c.points)),
                                      "XYZC" if seq.dims == 3 else "XYC")
                  for c in skeletons.get(seq.skeleton).components]
  else:  # layout known only from a header: regroup its points by component
    components = [
        PoseHeaderComponent(name, [p
                                   for _, p in group], [], [], "XYZC" if seq.dims == 3 else "XYC")
        for name, group in ((n, list(g)) for n, g in itertools.groupby(seq.points, key=lambda x: x[0]))
    ]
  if dimensions is None:
    dimensions = (1000, 1000, 1000 if seq.dims == 3 else 0)
  header = PoseHeader(version=0.2, dimensions=PoseHeaderDimensions(*dimensions), components=components)
  values = seq.data
  world = _world_columns(seq.points or (), seq.dims)
  if world is not None:  # as pose-format writes them
    values = values.copy()
    values[:, world] *= _world_scale(header.dimensions, seq.dims)
  mask = np.broadcast_to((seq.confidence == 0)[:, None, :, None], (seq.num_frames, 1) + seq.data.shape[1:])
  data = np.ma.masked_array(values[:, None], mask=mask)
  body = NumPyPoseBody(fps=seq.fps, data=data, confidence=seq.confidence[:, None])
  return Pose(header, body)


def write_pose(seq: PoseSequence, path: str | os.PathLike,
               dimensions: tuple[int, int, int] | None = None) -> None:
  """Writes `seq` as a `.pose` file that pose-format's `Pose.read` opens.

  Written to a temporary name and renamed, so a crash never leaves half a file.
  """
  pose = to_pose_format(seq, dimensions)
  tmp = f"{path}.tmp{os.getpid()}"
  with open(tmp, "wb") as handle:
    pose.write(handle)
  os.replace(tmp, path)


def _world_columns(points, dims: int):
  """Indices of MediaPipe's world landmarks. pose-format's `load_holistic` stores them as
  (x * video width, y * video height, z): metres only after dividing by the header's dimensions."""
  index = [i for i, (component, _) in enumerate(points) if component == "POSE_WORLD_LANDMARKS"]
  return np.asarray(index) if index and dims >= 2 else None


def _world_scale(dimensions, dims: int) -> np.ndarray:
  return np.asarray([max(dimensions.width, 1), max(dimensions.height, 1), 1][:dims], np.float32)


def _colors(count: int) -> list[tuple[int, int, int]]:
  return [(255, 255 * i // max(count - 1, 1), 0) for i in range(count)]


def write_generated_pose(seq: PoseSequence, path: str | os.PathLike) -> None:
  """A normalised (generated) sequence as a `.pose` in a 1000 x 1000 frame: shoulder width 200 px,
  neck at (500, 350), so pose-format's viewers show it at a sensible size."""
  from asl_motiongpt.pose.transform import Normalization, denormalize
  center = np.tile(np.array([500.0, 350.0, 0.0][:seq.dims], np.float32), (seq.num_frames, 1))
  write_pose(denormalize(seq, Normalization(center, 200.0)), path, dimensions=(1000, 1000, 0))
