"""Drawings a person can read (asl_motiongpt/pose/render.py), on a real MediaPipe Holistic file
(pose-format's test file: the right hand is seen in 152 of its 170 frames): each hand enlarged to a
readable size with a colour per finger, unsure joints faded, a reference and a generated sign side
by side on one time axis, and animations that keep all of it."""
import os

import numpy as np
import pytest
from PIL import Image

from asl_motiongpt.pose import read_pose, render
from asl_motiongpt.pose.sequence import PoseSequence
from asl_motiongpt.pose.transform import normalize, to_unified

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
FRAME = 80  # the right hand is seen


@pytest.fixture(scope="module")
def signer() -> PoseSequence:
  unified, _ = normalize(to_unified(read_pose(os.path.join(FIXTURES, "pose_format", "mediapipe.pose")), face=True))
  assert unified.mask[FRAME, 29:50].all()
  return unified


def _colour_pixels(image: Image.Image, colours) -> np.ndarray:
  """(row, column) of the pixels drawn in any of `colours`."""
  pixels = np.asarray(image.convert("RGB")).astype(int)
  hits = np.zeros(pixels.shape[:2], bool)
  for colour in colours:
    hits |= (pixels == np.asarray(colour)).all(axis=-1)
  return np.argwhere(hits)


def _extent(points: np.ndarray) -> int:
  return int((points.max(axis=0) - points.min(axis=0)).max()) if len(points) else 0


def test_a_hand_is_drawn_large_enough_to_see_each_finger(signer):
  """The enlarged hand spans at least a quarter of the figure's height (in the signer panel alone, at
  the body's scale, it spans a few percent: fingers cannot be told apart there), and each of the five
  fingers has its own colour in it."""
  image = render.draw_frame(signer, FRAME, size=384)
  assert image.size == (384 + 192, 384)
  inset = image.crop((385, 0, image.size[0], 384))
  drawn = _colour_pixels(inset, render.FINGER_COLORS)
  assert _extent(drawn) >= 0.25 * image.size[1], _extent(drawn)
  for finger, colour in enumerate(render.FINGER_COLORS):
    assert len(_colour_pixels(inset, [colour])) > 20, finger
  in_place = _colour_pixels(image.crop((0, 0, 384, 384)), render.FINGER_COLORS)
  assert _extent(in_place) < 0.25 * image.size[1]  # what the inset is for


def test_unsure_joints_are_faded_and_missing_ones_not_drawn(signer):
  hand = slice(29, 50)
  unsure = signer.confidence.copy()
  unsure[:, hand] = np.where(signer.mask[:, hand], 0.3, 0.0)
  faded_image = render.draw_frame(signer.replace(confidence=unsure), FRAME, size=384)
  assert len(_colour_pixels(faded_image, render.FINGER_COLORS)) == 0  # no finger at full strength
  assert len(_colour_pixels(faded_image, [render._faded(c, 0.3) for c in render.FINGER_COLORS])) > 100
  gone = signer.confidence.copy()
  gone[:, hand] = 0.0
  unseen = render.draw_frame(signer.replace(confidence=gone), FRAME, size=384)
  faint = [render._faded(c, level) for c in render.FINGER_COLORS for level in render.FADE_LEVELS]
  assert len(_colour_pixels(unseen, faint)) == 0


def test_reference_and_generated_side_by_side_on_one_time_axis(signer, tmp_path):
  """Sequences of different lengths: as many frames as the longer, both at the same fraction of their
  length, one scale; the GIF keeps the finger colours exactly (its palette holds every fade level)."""
  short = signer.replace(data=signer.data[40:60], confidence=signer.confidence[40:60])  # 20 frames
  frames = render.pair_frames(short, signer, size=192)
  assert len(frames) == signer.num_frames and frames[0].size == (2 * (192 + 96), 192)
  assert render._on_one_time_axis(short, signer, 3) == [(0, 0), (10, 84), (19, 169)]
  path = str(tmp_path / "pair.gif")
  render.write_animation(signer, path, size=192, reference=short)
  gif = Image.open(path)
  assert gif.n_frames > 1 and gif.size == frames[0].size
  gif.seek(FRAME)
  assert len(_colour_pixels(gif, render.FINGER_COLORS)) > 50
  sheet = str(tmp_path / "sheet.png")
  render.comparison_sheet(short, signer, sheet, count=4, size=128, titles=("reference", "generated"))
  assert Image.open(sheet).size == (4 * (128 + 64), 256)
