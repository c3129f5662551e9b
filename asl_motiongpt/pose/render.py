"""Skeleton drawings a person can read: body, both hands (one colour each) and face, on white.

Frames are drawn with Pillow (no display needed); `write_gif` / `write_mp4` write an animation
(MP4: H.264 through the ffmpeg binary that the imageio-ffmpeg wheel ships), `write_png` one frame.
Any layout with a registry skeleton can be drawn; unified poses are drawn best.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from asl_motiongpt.pose import skeletons
from asl_motiongpt.pose.sequence import PoseSequence

_COMPONENT_COLORS = {"BODY": (40, 40, 40), "LEFT_HAND": (200, 40, 40), "RIGHT_HAND": (40, 90, 200),
                     "FACE": (40, 150, 60)}


def _layout(seq: PoseSequence, size: int, margin: float = 0.08):
  """Maps the sequence's x/y (all frames together, so the signer does not jump) into the image."""
  xy = seq.data[..., :2][seq.mask]
  if xy.size == 0:
    raise ValueError("nothing to draw: no joint is present")
  lo, hi = xy.min(axis=0), xy.max(axis=0)
  scale = (1 - 2 * margin) * size / max(float((hi - lo).max()), 1e-6)
  offset = (size - scale * (hi - lo)) / 2 - scale * lo
  return scale, offset


def draw_frame(seq: PoseSequence, frame: int, size: int = 384, layout=None) -> Image.Image:
  skeleton = skeletons.get(seq.skeleton)
  scale, offset = layout or _layout(seq, size)
  image = Image.new("RGB", (size, size), "white")
  draw = ImageDraw.Draw(image)
  points = seq.data[frame, :, :2] * scale + offset
  present = seq.mask[frame]
  start = 0
  width = max(1, size // 128)
  for component in skeleton.components:
    color = _COMPONENT_COLORS.get(component.name, (90, 90, 90))
    for start_joint, end_joint in component.limbs:
      start_joint, end_joint = start + start_joint, start + end_joint
      if present[start_joint] and present[end_joint]:
        draw.line([tuple(points[start_joint]), tuple(points[end_joint])], fill=color, width=width + 1)
    for joint in range(start, start + len(component.points)):
      if present[joint]:
        column, row = points[joint]
        draw.ellipse([column - width, row - width, column + width, row + width], fill=color)
    start += len(component.points)
  _draw_head(draw, skeleton, points, present, width)
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
  draw.ellipse([column - radius, row - radius, column + radius, row + radius],
               outline=(40, 40, 40),
               width=width + 1)


def frames(seq: PoseSequence, size: int = 384) -> list[Image.Image]:
  layout = _layout(seq, size)
  return [draw_frame(seq, t, size, layout) for t in range(seq.num_frames)]


def _drawing_palette() -> Image.Image:
  """A "P" image whose palette holds every colour draw_frame uses (it draws without anti-aliasing)."""
  colours = [(255, 255, 255), (40, 40, 40), (90, 90, 90), *_COMPONENT_COLORS.values()]
  palette = Image.new("P", (1, 1))
  palette.putpalette([channel for colour in colours for channel in colour] + [0, 0, 0] * (256 - len(colours)))
  return palette


def write_gif(seq: PoseSequence, path: str, size: int = 384) -> None:
  # Mapped onto the drawing's own colours (exact, no dithering): Pillow's default conversion of RGB
  # frames builds an adaptive palette per frame, the slowest part of writing a GIF.
  palette = _drawing_palette()
  images = [image.quantize(palette=palette, dither=Image.Dither.NONE) for image in frames(seq, size)]
  images[0].save(path, save_all=True, append_images=images[1:], loop=0,
                 duration=int(round(1000 / seq.fps)))


def write_mp4(seq: PoseSequence, path: str, size: int = 384) -> None:
  """H.264 / yuv420p (plays in browsers and common players); `size` is rounded to even pixels."""
  import warnings
  import imageio_ffmpeg
  size += size % 2
  writer = imageio_ffmpeg.write_frames(path, (size, size), fps=seq.fps, codec="libx264", pix_fmt_out="yuv420p",
                                       macro_block_size=2, ffmpeg_log_level="error")
  with warnings.catch_warnings():
    # JAX warns on any fork; this one is subprocess' fork+exec of ffmpeg, which runs no Python
    warnings.filterwarnings("ignore", message="os.fork", category=RuntimeWarning)
    writer.send(None)  # starts ffmpeg
  try:
    for image in frames(seq, size):
      writer.send(np.ascontiguousarray(np.asarray(image, np.uint8)))
  finally:
    writer.close()


def write_animation(seq: PoseSequence, path: str, size: int = 384) -> None:
  """.gif or .mp4, by the file's extension."""
  if path.endswith(".gif"):
    write_gif(seq, path, size)
  elif path.endswith(".mp4"):
    write_mp4(seq, path, size)
  else:
    raise ValueError(f"{path}: write an animation as .gif or .mp4")


def write_png(seq: PoseSequence, path: str, frame: int = 0, size: int = 384) -> None:
  draw_frame(seq, frame, size).save(path)


def contact_sheet(seq: PoseSequence, path: str, count: int = 8, size: int = 192) -> None:
  """`count` evenly spaced frames side by side in one PNG: a quick look at a whole sequence."""
  layout = _layout(seq, size)
  picks = np.linspace(0, seq.num_frames - 1, count).round().astype(int)
  sheet = Image.new("RGB", (size * count, size), "white")
  for slot, frame in enumerate(picks):
    sheet.paste(draw_frame(seq, int(frame), size, layout), (slot * size, 0))
  sheet.save(path)


def comparison_sheet(top: PoseSequence,
                     bottom: PoseSequence,
                     path: str,
                     count: int = 8,
                     size: int = 192) -> None:
  """Two sequences of the same length, frame by frame: `top` above `bottom`, on one shared scale."""
  both = PoseSequence(np.concatenate([top.data, bottom.data]),
                      np.concatenate([top.confidence, bottom.confidence]), top.fps, top.skeleton)
  layout = _layout(both, size)
  picks = np.linspace(0, min(top.num_frames, bottom.num_frames) - 1, count).round().astype(int)
  sheet = Image.new("RGB", (size * count, 2 * size), "white")
  for slot, frame in enumerate(picks):
    sheet.paste(draw_frame(top, int(frame), size, layout), (slot * size, 0))
    sheet.paste(draw_frame(bottom, int(frame), size, layout), (slot * size, size))
  sheet.save(path)
