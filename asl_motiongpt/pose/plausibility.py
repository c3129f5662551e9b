"""Hands no human has: frames where a hand detector's output cannot be a hand.

Hand detectors (MediaPipe's above all) sometimes lose a hand and go on reporting 21 points that fly
off the image: in one of sign.mt's lexicon files the right hand's fingers lie 9-11 shoulder widths
from its wrist in most of 258 frames, and a benchmark's error on a held-out language was mostly those
frames. A tokenizer trained on such frames learns noise, and an evaluation that scores them measures
it. So `prepare` masks a hand in a frame where it is implausible (the reader's lenient policy: the
frame keeps its time, the hand's confidence becomes 0, each masked hand is listed with its record).

Two tests, on the normalised unified skeleton (1 = the sequence's mean shoulder width):
  * size: the fingers' mean distance from their wrist;
  * place: the hand's wrist against the body's wrist, where both are detected.
Measured on every real source the tests carry (PHOENIX Progressive Transformers skeletons, pose-format's
MediaPipe and OpenPose files, a Holistic run on a video, the 325 lexicon files of the 11 languages;
2026-12-07) real hands reach a finger spread of 0.62 (99th percentile 0.40-0.51 per source; above 0.62
only frames of the two lexicon files that lose the hand, as it flies off and back) and a wrist gap of
0.83 (99th percentile 0.05-0.24). The bounds below sit above both, so only detections no hand can make
fall outside; a lost hand's first frames, still below them, stay.

Body points MediaPipe did not see: its body landmarks carry a visibility, and below MIN_VISIBILITY
their positions are guesses (an arm below the frame). `unseen_body_joints` finds them (MediaPipe layouts
only), `cleaned` applies both rules as `prepare` does, for inference on a pose file.
"""
from __future__ import annotations

import numpy as np

from asl_motiongpt.pose import skeletons

MAX_FINGER_SPREAD = 1.0  # shoulder widths: the fingers' mean distance from their wrist
MAX_WRIST_GAP = 1.0      # shoulder widths: the hand's wrist from the body's wrist

# (name, the hand's block in the unified skeleton, the body's wrist for that hand)
HANDS = (("left_hand", skeletons.UNIFIED_LEFT_HAND, skeletons.UNIFIED_BODY_POINTS.index("LEFT_WRIST")),
         ("right_hand", skeletons.UNIFIED_RIGHT_HAND, skeletons.UNIFIED_BODY_POINTS.index("RIGHT_WRIST")))


def hand_measures(pose_FJD: np.ndarray, mask_FJ: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """{hand name: (finger spread [frames], wrist gap [frames])} of a normalised unified sequence (pose
  [frames, joints, dims], mask [frames, joints]); NaN where the hand (or, for the gap, either wrist)
  is not there."""
  measures = {}
  for name, block, body_wrist in HANDS:
    wrist = block.start
    fingers_present_FJ = mask_FJ[:, wrist + 1:block.stop] & mask_FJ[:, wrist:wrist + 1]
    distances_FJ = np.linalg.norm(pose_FJD[:, wrist + 1:block.stop] - pose_FJD[:, wrist:wrist + 1], axis=-1)
    counted_F = fingers_present_FJ.sum(1)
    spread_F = np.where(counted_F > 0,
                        np.where(fingers_present_FJ, distances_FJ, 0.0).sum(1) / np.maximum(counted_F, 1), np.nan)
    both_wrists_F = mask_FJ[:, wrist] & mask_FJ[:, body_wrist]
    gap_F = np.where(both_wrists_F, np.linalg.norm(pose_FJD[:, wrist] - pose_FJD[:, body_wrist], axis=-1), np.nan)
    measures[name] = (spread_F, gap_F)
  return measures


def implausible_hands(pose_FJD: np.ndarray, mask_FJ: np.ndarray) -> dict[str, np.ndarray]:
  """{hand name: [frames] bool, True where that hand is there and cannot be a hand}."""
  found = {}
  for (name, block, _), (spread_F, gap_F) in zip(HANDS, hand_measures(pose_FJD, mask_FJ).values()):
    with np.errstate(invalid="ignore"):  # NaN (not there) compares False
      too_far_F = (spread_F > MAX_FINGER_SPREAD) | (gap_F > MAX_WRIST_GAP)
    found[name] = too_far_F & mask_FJ[:, block].any(1)
  return found


def describe(frames_F: np.ndarray) -> str:
  """'frames 3-5, 9 (4 of 20)': which frames, as ranges."""
  where = np.flatnonzero(frames_F)
  runs, start = [], None
  for position, frame in enumerate(where):
    if start is None:
      start = frame
    if position + 1 == len(where) or where[position + 1] != frame + 1:
      runs.append(f"{start}" if start == frame else f"{start}-{frame}")
      start = None
  return f"frames {', '.join(runs)} ({len(where)} of {len(frames_F)})"


# MediaPipe gives each body point a visibility (the chance it is in the image and not hidden); below
# this, the position is the network's guess (an arm below the frame, lying 3-6 shoulder widths deep in
# two of the lexicon's files). 0.5 is the threshold MediaPipe's own drawing utilities use.
MIN_VISIBILITY = 0.5


def unseen_body_joints(confidence_FJ: np.ndarray, source_skeleton: str,
                       min_visibility: float = MIN_VISIBILITY) -> np.ndarray:
  """[F, J] bool: the unified skeleton's body joints present with a confidence below `min_visibility`,
  for sequences read from a MediaPipe layout only (its body confidence is a visibility; OpenPose's is a
  detection score, and the other layouts have none): nothing for the others, or with min_visibility 0."""
  unseen = np.zeros(confidence_FJ.shape, bool)
  if min_visibility <= 0 or skeletons.layout_family(source_skeleton) != "mediapipe":
    return unseen
  body = confidence_FJ[:, skeletons.UNIFIED_BODY]
  unseen[:, skeletons.UNIFIED_BODY] = (body > 0) & (body < min_visibility)
  return unseen


def without(seq, drop_FJ: np.ndarray):
  """`seq` (a PoseSequence) with the joints of `drop_FJ` masked: confidence 0, position 0."""
  if not drop_FJ.any():
    return seq
  confidence = np.where(drop_FJ, 0.0, seq.confidence).astype(np.float32)
  return seq.replace(data=np.where(confidence[..., None] > 0, seq.data, 0.0), confidence=confidence)


def cleaned(seq, source_skeleton: str, judged=None, min_visibility: float = MIN_VISIBILITY):
  """What `prepare` keeps of a normalised unified sequence: hands masked where implausible (judged on
  `judged`, the same frames in image space, by default `seq`) and body joints MediaPipe did not see
  masked. Inference reads a pose file through this too, so a model sees what it was trained on."""
  judged = seq if judged is None else judged
  drop = np.zeros(seq.confidence.shape, bool)
  for (_, block, _), frames_F in zip(HANDS, implausible_hands(judged.data, judged.mask).values()):
    drop[frames_F, block] = True
  return without(seq, drop | unseen_body_joints(seq.confidence, source_skeleton, min_visibility))

