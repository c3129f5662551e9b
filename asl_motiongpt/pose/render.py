"""Skeleton drawings a person can read: the signer, and each hand large enough to see its fingers.

A frame is a panel of the whole signer (body in grey, face block in green when the skeleton has it,
hands drawn in place) with a column beside it holding each hand enlarged: the hand's joints around
their centre, at one scale for the whole sequence (a hand's size and opening stay comparable between
frames). Fingers have a colour each (thumb, index, middle, ring, little), the same in the panel and
the insets; a joint the pose estimator was unsure of is faded towards white by its confidence, a
missing one is not drawn. `pair_frames` draws two sequences (a reference and a generated sign) side by
side on one time axis (each resampled to the longer one's frames).

Frames are drawn with Pillow (no display needed); `write_gif` / `write_mp4` write an animation
(MP4: H.264 through the ffmpeg binary that the imageio-ffmpeg wheel ships), `write_png` one frame,
`contact_sheet` / `comparison_sheet` strips of frames. Any layout with a registry skeleton can be
drawn; unified poses are drawn best.
"""
from __future__ import annotations

import dataclasses

import numpy as np
from PIL import Image, ImageDraw

from asl_motiongpt.pose import skeletons
from asl_motiongpt.pose.sequence import PoseSequence

WHITE = (255, 255, 255)
BODY_COLOR, FACE_COLOR, LABEL_COLOR = (60, 60, 60), (40, 150, 60), (110, 110, 110)
# thumb, index, middle, ring, little: apart in hue, dark enough on white
FINGER_COLORS = ((214, 39, 40), (255, 127, 14), (44, 160, 44), (31, 119, 180), (148, 103, 189))
FADE_LEVELS = (1.0, 0.6, 0.3)  # confidence drawn at one of these strengths (a GIF palette holds them all)
HAND_POINT_COUNT = 21          # wrist + 4 joints per finger (MediaPipe and OpenPose alike)
INSET_FILL = 0.84              # of an inset's side, the diameter of the largest hand pose of the sequence


def _finger(joint: int) -> int:
  """0-4 (thumb..little) for a hand joint 1-20 in the 21-point hand layouts; the wrist belongs to none."""
  return (joint - 1) // 4


def _faded(color, confidence: float):
  """`color` towards white by confidence, in FADE_LEVELS steps (below 0.15 the faintest)."""
  strength = next((level for level in FADE_LEVELS if confidence >= level - 0.15), FADE_LEVELS[-1])
  return tuple(int(round(255 + (channel - 255) * strength)) for channel in color)


@dataclasses.dataclass(frozen=True)
class Part:
  """A component of the skeleton: its joint range in the sequence and how it is drawn."""
  name: str
  start: int
  count: int
  limbs: tuple
  is_hand: bool
  label: str = ""   # hands: "right hand" / "left hand" (the signer's)


def _parts(skeleton) -> list[Part]:
  parts, start = [], 0
  for component in skeleton.components:
    count = len(component.points)
    is_hand = count == HAND_POINT_COUNT and "HAND" in component.name.upper()
    name = component.name.upper()
    label = ("right hand" if "RIGHT" in name else "left hand" if "LEFT" in name else component.name.lower()) \
        if is_hand else ""
    parts.append(Part(component.name, start, count, tuple(component.limbs), is_hand, label))
    start += count
  return parts


def _limb_color(part: Part, end_joint: int):
  if part.is_hand:
    return FINGER_COLORS[_finger(end_joint)]
  return FACE_COLOR if part.name.upper() == "FACE" else BODY_COLOR


@dataclasses.dataclass(frozen=True)
class Layout:
  """Where a sequence's coordinates go: the signer panel (one scale and offset for all frames, so the
  signer does not jump) and each hand's inset scale (one per hand for the sequence)."""
  size: int          # panel height = width; each inset is size/2 square
  scale: float
  offset: np.ndarray
  hand_scales: tuple

  @property
  def width(self) -> int:
    return self.size + self.size // 2


def layout_for(sequences, size: int, margin: float = 0.08) -> Layout:
  """One layout for all of `sequences` (e.g. a reference and its generated sign: the same scale)."""
  sequences = list(sequences)
  points = np.concatenate([seq.data[..., :2][seq.mask] for seq in sequences])
  if points.size == 0:
    raise ValueError("nothing to draw: no joint is present")
  low, high = points.min(axis=0), points.max(axis=0)
  scale = (1 - 2 * margin) * size / max(float((high - low).max()), 1e-6)
  offset = (size - scale * (high - low)) / 2 - scale * low
  hands = [part for part in _parts(skeletons.get(sequences[0].skeleton)) if part.is_hand]
  hand_scales = []
  for part in hands:
    radii = []
    for seq in sequences:
      xy = seq.data[:, part.start:part.start + HAND_POINT_COUNT, :2]
      present = seq.mask[:, part.start:part.start + HAND_POINT_COUNT]
      for frame in np.flatnonzero(present.sum(axis=1) >= 2):
        joints = xy[frame][present[frame]]
        radii.append(float(np.linalg.norm(joints - joints.mean(axis=0), axis=1).max()))
    # the 90th percentile, not the largest: one garbled frame must not shrink every other (it is cut
    # at the inset's border instead)
    radius = max(float(np.percentile(radii, 90)) if radii else 1.0, 1e-6)
    hand_scales.append(INSET_FILL * (size // 2) / 2 / radius)
  return Layout(size, scale, offset, tuple(hand_scales))


def _draw_limbs(draw, part: Part, points, present, confidence, width: int) -> None:
  for start_joint, end_joint in part.limbs:
    first, second = part.start + start_joint, part.start + end_joint
    if present[first] and present[second]:
      color = _faded(_limb_color(part, end_joint), min(confidence[first], confidence[second]))
      draw.line([tuple(points[first]), tuple(points[second])], fill=color, width=width)
  for joint in range(part.start, part.start + part.count):
    if present[joint]:
      local = joint - part.start
      base = FINGER_COLORS[_finger(local)] if part.is_hand and local else _limb_color(part, 0)
      color = _faded(base, confidence[joint])
      column, row = points[joint]
      draw.ellipse([column - width, row - width, column + width, row + width], fill=color)


def draw_frame(seq: PoseSequence, frame: int, size: int = 384, layout: Layout | None = None,
               title: str = "") -> Image.Image:
  """One frame: the signer panel (size x size) and the hand column (size/2 wide) beside it."""
  layout = layout or layout_for([seq], size)
  size = layout.size
  parts = _parts(skeletons.get(seq.skeleton))
  image = Image.new("RGB", (layout.width, size), WHITE)
  draw = ImageDraw.Draw(image)
  present, confidence = seq.mask[frame], np.clip(seq.confidence[frame], 0.0, 1.0)
  xy = seq.data[frame, :, :2]
  points = xy * layout.scale + layout.offset
  width = max(1, size // 160)
  for part in parts:
    _draw_limbs(draw, part, points, present, confidence, width + 1)
  _draw_head(draw, skeletons.get(seq.skeleton), points, present, width)
  draw.line([(size, 0), (size, size)], fill=(225, 225, 225), width=1)
  for index, part in enumerate(part for part in parts if part.is_hand):
    image.paste(_hand_inset(part, xy, present, confidence, layout.hand_scales[index], size // 2),
                (size + 1, index * (size // 2)))
  if title:
    draw.text((4, 2), title, fill=LABEL_COLOR)
  return image


def _hand_inset(part: Part, xy, present, confidence, scale: float, inset: int) -> Image.Image:
  """One hand enlarged in its own square (what falls outside is cut at its border)."""
  image = Image.new("RGB", (inset - 1, inset), WHITE)
  draw = ImageDraw.Draw(image)
  draw.line([(0, 0), (inset, 0)], fill=(225, 225, 225), width=1)
  draw.text((4, 3), part.label, fill=LABEL_COLOR)
  joints = slice(part.start, part.start + HAND_POINT_COUNT)
  here = present[joints]
  if here.sum() < 2:
    draw.text((4, inset // 2), "not seen", fill=LABEL_COLOR)
    return image
  centre = xy[joints][here].mean(axis=0)
  points = np.array(xy, np.float64)
  points[joints] = (xy[joints] - centre) * scale + inset / 2
  _draw_limbs(draw, part, points, present, confidence, max(2, inset // 48))
  return image


def _draw_head(draw, skeleton, points, present, width: int) -> None:
  """A head outline around the nose, sized by the shoulders, when the skeleton has no face block:
  a stick figure reads as a person far more easily with a head."""
  names = {}
  start = 0
  for component in skeleton.components:
    if component.name == "FACE":
      return
    if component.name == "BODY":
      names = {n: start + i for i, n in enumerate(component.points)}
    start += len(component.points)
  nose, right, left = names.get("NOSE"), names.get("RIGHT_SHOULDER"), names.get("LEFT_SHOULDER")
  if nose is None or right is None or left is None or not (present[nose] and present[right] and present[left]):
    return
  radius = 0.3 * float(np.linalg.norm(points[right] - points[left]))
  column, row = points[nose]
  draw.ellipse([column - radius, row - radius, column + radius, row + radius], outline=BODY_COLOR, width=width + 1)


def frames(seq: PoseSequence, size: int = 384, stride: int = 1) -> list[Image.Image]:
  """Every `stride`-th frame drawn, on one layout."""
  layout = layout_for([seq], size)
  return [draw_frame(seq, t, size, layout) for t in range(0, seq.num_frames, stride)]


def _on_one_time_axis(first: PoseSequence, second: PoseSequence, count: int):
  """`count` moments of both sequences at the same fraction of their length (frame indices)."""
  moments = np.linspace(0.0, 1.0, count)
  return [(int(round(m * (first.num_frames - 1))), int(round(m * (second.num_frames - 1)))) for m in moments]


def pair_frames(reference: PoseSequence, generated: PoseSequence, size: int = 384,
                titles=("reference", "generated"), stride: int = 1) -> list[Image.Image]:
  """Both signs side by side, frame by frame on one time axis (as many frames as the longer one, or
  every `stride`-th of them), on one scale: what a reader compares when judging a generated sign."""
  layout = layout_for([reference, generated], size)
  count = max(reference.num_frames, generated.num_frames)
  out = []
  for first, second in _on_one_time_axis(reference, generated, count)[::stride]:
    image = Image.new("RGB", (2 * layout.width, layout.size), WHITE)
    image.paste(draw_frame(reference, first, size, layout, titles[0]), (0, 0))
    image.paste(draw_frame(generated, second, size, layout, titles[1]), (layout.width, 0))
    ImageDraw.Draw(image).line([(layout.width, 0), (layout.width, layout.size)], fill=(170, 170, 170), width=2)
    out.append(image)
  return out


def _drawing_palette() -> Image.Image:
  """A "P" image whose palette holds every colour the drawings use, at every fade level (they are
  drawn without anti-aliasing, so the mapping is exact); the labels' anti-aliased text maps to the
  nearest of them."""
  bases = [BODY_COLOR, FACE_COLOR, *FINGER_COLORS]
  colours = [WHITE, LABEL_COLOR, (225, 225, 225), (170, 170, 170)] + \
      [_faded(color, level) for color in bases for level in FADE_LEVELS]
  colours = list(dict.fromkeys(colours))
  palette = Image.new("P", (1, 1))
  palette.putpalette([channel for colour in colours for channel in colour] + [0, 0, 0] * (256 - len(colours)))
  return palette


def _save_gif(images: list[Image.Image], path: str, fps: float) -> None:
  # Mapped onto the drawing's own colours (no dithering): Pillow's default conversion of RGB frames
  # builds an adaptive palette per frame, the slowest part of writing a GIF.
  palette = _drawing_palette()
  images = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in images]
  images[0].save(path, save_all=True, append_images=images[1:], loop=0, duration=int(round(1000 / fps)))


def _save_mp4(images: list[Image.Image], path: str, fps: float) -> None:
  """H.264 / yuv420p (plays in browsers and common players); odd sides are padded to even pixels."""
  import warnings
  import imageio_ffmpeg
  width, height = images[0].size
  width, height = width + width % 2, height + height % 2
  writer = imageio_ffmpeg.write_frames(path, (width, height), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                       macro_block_size=2, ffmpeg_log_level="error")
  with warnings.catch_warnings():
    # JAX warns on any fork; this one is subprocess' fork+exec of ffmpeg, which runs no Python
    warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
    writer.send(None)  # starts ffmpeg
  try:
    for image in images:
      canvas = Image.new("RGB", (width, height), WHITE)
      canvas.paste(image, (0, 0))
      writer.send(np.ascontiguousarray(np.asarray(canvas, np.uint8)))
  finally:
    writer.close()


def write_gif(seq: PoseSequence, path: str, size: int = 384) -> None:
  _save_gif(frames(seq, size), path, seq.fps)


def write_mp4(seq: PoseSequence, path: str, size: int = 384) -> None:
  _save_mp4(frames(seq, size), path, seq.fps)


def write_animation(seq: PoseSequence, path: str, size: int = 384, reference: PoseSequence | None = None,
                    max_fps: float | None = None) -> None:
  """.gif or .mp4, by the file's extension; with `reference`, the reference beside the sign; with
  `max_fps`, every k-th frame at 1/k of the frame rate (the same duration, fewer frames to draw)."""
  if not path.endswith((".gif", ".mp4")):
    raise ValueError(f"{path}: write an animation as .gif or .mp4")
  stride = max(1, int(np.ceil(seq.fps / max_fps))) if max_fps else 1
  images = pair_frames(reference, seq, size, stride=stride) if reference is not None else frames(seq, size, stride)
  (_save_gif if path.endswith(".gif") else _save_mp4)(images, path, seq.fps / stride)


def write_png(seq: PoseSequence, path: str, frame: int = 0, size: int = 384) -> None:
  draw_frame(seq, frame, size).save(path)


def contact_sheet_image(seq: PoseSequence, count: int = 8, size: int = 192, title: str = "") -> Image.Image:
  """`count` evenly spaced frames side by side: a quick look at a whole sequence."""
  layout = layout_for([seq], size)
  picks = np.linspace(0, seq.num_frames - 1, count).round().astype(int)
  sheet = Image.new("RGB", (layout.width * count, size), WHITE)
  for slot, frame in enumerate(picks):
    sheet.paste(draw_frame(seq, int(frame), size, layout, title if slot == 0 else ""), (slot * layout.width, 0))
  return sheet


def contact_sheet(seq: PoseSequence, path: str, count: int = 8, size: int = 192) -> None:
  contact_sheet_image(seq, count, size).save(path)


def comparison_image(top: PoseSequence, bottom: PoseSequence, count: int = 8, size: int = 192,
                     titles=("", "")) -> Image.Image:
  """Two sequences on one time axis and one scale: `top` above `bottom`, `count` moments of each at
  the same fraction of their length (a reference above its reconstruction or generated sign); the
  titles go on each row's first frame."""
  layout = layout_for([top, bottom], size)
  sheet = Image.new("RGB", (layout.width * count, 2 * size), WHITE)
  for slot, (first, second) in enumerate(_on_one_time_axis(top, bottom, count)):
    sheet.paste(draw_frame(top, first, size, layout, titles[0] if slot == 0 else ""), (slot * layout.width, 0))
    sheet.paste(draw_frame(bottom, second, size, layout, titles[1] if slot == 0 else ""), (slot * layout.width, size))
  return sheet


def comparison_sheet(top: PoseSequence, bottom: PoseSequence, path: str, count: int = 8, size: int = 192,
                     titles=("", "")) -> None:
  comparison_image(top, bottom, count, size, titles).save(path)
