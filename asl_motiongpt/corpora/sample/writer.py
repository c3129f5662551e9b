"""Writes the embedded sample corpus in the three real formats, deterministically from a seed.

    <out>/how2sign/    how2sign_realigned_{train,val,test}.csv + {split}_2D_keypoints/openpose_output/json/<SENTENCE_NAME>/
    <out>/phoenix14t/  PHOENIX-2014-T.{train,dev,test}.corpus.csv + poses/<name>.pose (Holistic 543, 3D)
    <out>/hamnosys/    data.json + splits.json + poses/<id>.pose (OpenPose 137, 2D); a few entries text-only

Same seed, same bytes. The readers in `asl_motiongpt.corpora` read these files like the real ones.
"""
from __future__ import annotations

import dataclasses
import json
import os

import numpy as np

from asl_motiongpt.corpora.openpose_json import to_openpose_json
from asl_motiongpt.corpora.sample import animate, lexicon
from asl_motiongpt.pose.pose_io import write_pose
from asl_motiongpt.pose.sequence import PoseSequence
from asl_motiongpt.pose.transform import from_unified


@dataclasses.dataclass(frozen=True)
class SampleSizes:
  how2sign: int = 100
  phoenix: int = 200
  hamnosys_signers: int = 3
  hamnosys_text_only: int = 6
  signers: int = 6


SMALL = SampleSizes(how2sign=20, phoenix=30, hamnosys_signers=2, hamnosys_text_only=3, signers=4)
# frame size (pixels) and shoulder width in pixels of each corpus' videos
_VIDEO = {"how2sign": ((1280, 720), 200.0, (640, 330)),
          "phoenix14t": ((210, 260), 62.0, (105, 105)),
          "hamnosys": ((1920, 1080), 300.0, (960, 420))}
_CODE = {"how2sign": 1, "phoenix14t": 2, "hamnosys": 3}
_SYMBOL_CODE = None


def _to_pixels(seq: PoseSequence, corpus: str, signer: animate.Signer, dims: int) -> PoseSequence:
  (width, height), shoulder, (cx, cy) = _VIDEO[corpus]
  scale = shoulder * signer.size_px
  center = np.array([cx + signer.offset_px[0] * width, cy + signer.offset_px[1] * height, scale * 2.0])
  data = seq.data[..., :dims] * scale + center[:dims]
  data = np.where(seq.mask[..., None], data, 0.0)
  return seq.replace(data=data)


def _split(index: int, count: int, names: tuple[str, str, str]) -> str:
  fraction = index / count
  return names[0] if fraction < 0.8 else names[1] if fraction < 0.9 else names[2]


def _hamnosys_string(symbols: tuple[str, ...]) -> str:
  global _SYMBOL_CODE
  if _SYMBOL_CODE is None:
    from asl_motiongpt.corpora.hamnosys import symbol_table
    _SYMBOL_CODE = {name: chr(int(code[2:], 16)) for code, name in symbol_table().items()}
  return "".join(_SYMBOL_CODE[s] for s in symbols)


def write_how2sign(out: str, sizes: SampleSizes, seed: int, signers) -> int:
  root = os.path.join(out, "how2sign")
  rows = {s: [] for s in ("train", "val", "test")}
  for index in range(sizes.how2sign):
    rng = np.random.default_rng([seed, _CODE["how2sign"], index])
    sentence = lexicon.make_sentence(rng)
    signer = signers[index % len(signers)]
    seq = animate.animate(sentence.concepts_asl, signer, sentence.question, rng)
    split = _split(index, sizes.how2sign, ("train", "val", "test"))
    video = f"synth{signer.id[-2:]}x{index // 4:03d}"
    name = f"{video}_{index % 4}-5-rgb_front"
    pixels = from_unified(_to_pixels(seq, "how2sign", signer, 2), "openpose_137")
    folder = os.path.join(root, f"{split}_2D_keypoints", "openpose_output", "json", name)
    os.makedirs(folder, exist_ok=True)
    for frame_index, frame in enumerate(to_openpose_json(pixels)):
      with open(os.path.join(folder, f"{name}_{frame_index:012d}_keypoints.json"), "w") as handle:
        json.dump(frame, handle, separators=(",", ":"))
    start = round(1.5 * (index % 4), 2)
    rows[split].append("\t".join([video, f"{video}-rgb_front", f"{video}_{index % 4}", name, f"{start:.2f}",
                                  f"{start + seq.num_frames / animate.FPS:.2f}", sentence.english]))
  header = "\t".join(("VIDEO_ID", "VIDEO_NAME", "SENTENCE_ID", "SENTENCE_NAME", "START_REALIGNED",
                      "END_REALIGNED", "SENTENCE"))
  for split, lines in rows.items():
    with open(os.path.join(root, f"how2sign_realigned_{split}.csv"), "w", encoding="utf-8") as handle:
      handle.write("\n".join([header] + lines) + "\n")
  return sizes.how2sign


def write_phoenix(out: str, sizes: SampleSizes, seed: int, signers) -> int:
  root = os.path.join(out, "phoenix14t")
  os.makedirs(os.path.join(root, "poses"), exist_ok=True)
  rows = {s: [] for s in ("train", "dev", "test")}
  (width, height), _, _ = _VIDEO["phoenix14t"]
  for index in range(sizes.phoenix):
    rng = np.random.default_rng([seed, _CODE["phoenix14t"], index])
    sentence = lexicon.make_sentence(rng)
    signer = signers[index % len(signers)]
    seq = animate.animate(sentence.concepts_dgs, signer, sentence.question, rng)
    split = _split(index, sizes.phoenix, ("train", "dev", "test"))
    name = f"{1 + index % 28:02d}January_2026_Friday_tagesschau-{index}"
    write_pose(from_unified(_to_pixels(seq, "phoenix14t", signer, 3), "holistic_543"),
               os.path.join(root, "poses", f"{name}.pose"), dimensions=(width, height, width))
    rows[split].append("|".join([name, f"{name}/1/*.png", "-1", "-1", f"Signer{signer.id[-2:]}",
                                 sentence.gloss("de"), sentence.german]))
  for split, lines in rows.items():
    with open(os.path.join(root, f"PHOENIX-2014-T.{split}.corpus.csv"), "w", encoding="utf-8") as handle:
      handle.write("\n".join(["name|video|start|end|speaker|orth|translation"] + lines) + "\n")
  return sizes.phoenix


def write_hamnosys(out: str, sizes: SampleSizes, seed: int, signers) -> int:
  root = os.path.join(out, "hamnosys")
  os.makedirs(os.path.join(root, "poses"), exist_ok=True)
  (width, height), _, _ = _VIDEO["hamnosys"]
  data, splits = {}, {"train": [], "dev": [], "test": []}
  signs = lexicon.signs()
  for concept_index, (key, concept) in enumerate(lexicon.CONCEPTS.items()):
    symbols = signs[key].hamnosys_symbols()
    for signer_index in range(sizes.hamnosys_signers):
      entry_id = f"{9000 + concept_index * 10 + signer_index}"
      signer = signers[(concept_index + signer_index) % len(signers)]
      rng = np.random.default_rng([seed, _CODE["hamnosys"], concept_index, signer_index])
      seq = animate.animate((key,), signer, False, rng)
      write_pose(from_unified(_to_pixels(seq, "hamnosys", signer, 2), "openpose_137"),
                 os.path.join(root, "poses", f"{entry_id}.pose"), dimensions=(width, height, 0))
      data[entry_id] = dict(hamnosys=_hamnosys_string(symbols), hamnosys_text=",".join(symbols),
                            type_name=f"{concept.gloss_de}1^", signer=signer.id, video_frontal=None)
      split = "train" if signer_index < sizes.hamnosys_signers - 1 else ("dev", "test")[concept_index % 2]
      splits[split].append(entry_id)
  for entry_index in range(sizes.hamnosys_text_only):  # dictionary entries whose video was never posed
    key = list(lexicon.CONCEPTS)[entry_index]
    entry_id = f"{9900 + entry_index}"
    symbols = signs[key].hamnosys_symbols()
    data[entry_id] = dict(hamnosys=_hamnosys_string(symbols), hamnosys_text="",
                          type_name=f"{lexicon.CONCEPTS[key].gloss_de}2^", video_frontal=None)
    splits["train"].append(entry_id)
  with open(os.path.join(root, "data.json"), "w", encoding="utf-8") as handle:
    json.dump(data, handle, ensure_ascii=False, indent=1)
  with open(os.path.join(root, "splits.json"), "w", encoding="utf-8") as handle:
    json.dump(splits, handle, indent=1)
  return len(data)


def write_sample_corpus(out: str, sizes: SampleSizes = SampleSizes(), seed: int = 0) -> dict[str, str]:
  """Writes all three corpora under `out`; returns {corpus name: its folder}."""
  signers = animate.make_signers(sizes.signers, seed)
  write_how2sign(out, sizes, seed, signers)
  write_phoenix(out, sizes, seed, signers)
  write_hamnosys(out, sizes, seed, signers)
  return {"how2sign": os.path.join(out, "how2sign"), "phoenix14t": os.path.join(out, "phoenix14t"),
          "hamnosys": os.path.join(out, "hamnosys")}
