"""`prepare`: read a corpus, map to the unified skeleton, normalise, write ArrayRecord splits.

The output is a TFDS dataset directory (`<out>/sign_corpus/<corpus>/1.0.0/`) in the array_record
file format, so both `tfds.data_source` / `tfds.builder_from_directory(...).as_data_source()`
and Grain (`grain.MapDataset.source(...)`) read it with random access. Beside the records:
`stats.json` (per-joint mean/std of the normalised poses, counts, frame lengths, skipped records
by reason) and `skipped.jsonl` (every skipped record and masked frame, with file, record, field).

One record per example:
  id, text, gloss, hamnosys, hamnosys_symbols (comma-separated), signer, corpus: str ('' if absent)
  pose [frames, joints, dims] float32   normalised unified poses (neck origin, shoulder width 1)
  confidence [frames, joints] float32   0 = missing joint
  center [frames, dims], scale          what normalisation removed (to get pixels back)
  fps float32; has_pose bool (False for text-only entries, whose pose has 0 frames)
"""
from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time

import numpy as np
import tensorflow_datasets as tfds

from asl_motiongpt import corpora, storage
from asl_motiongpt.corpora import report as rp
from asl_motiongpt.pose import skeletons
from asl_motiongpt.pose.plausibility import (HANDS, MAX_FINGER_SPREAD, MAX_WRIST_GAP, MIN_VISIBILITY, describe,
                                             hand_measures, implausible_hands, unseen_body_joints, without)
from asl_motiongpt.pose.sequence import PoseSequence
from asl_motiongpt.pose.transform import (fit_dims, hand_relative, has_world_landmarks, normalize, resample,
                                          to_unified, with_world_landmarks)

BUILDER_NAME = "sign_corpus"
VERSION = "1.0.0"
# Pose dimensions written per corpus: OpenPose sources are 2D, Holistic and PT are 3D.
DEFAULT_DIMS = {"how2sign": 2, "hamnosys": 2, "phoenix14t": 3, "phoenix14t_pt": 3, "pose_dir": 3, "videos": 3,
                "tfds:phoenix14t": 3, "tfds:how2sign": 2}


@dataclasses.dataclass
class PrepareOptions:
  corpus: str
  src: str
  out: str
  splits: tuple[str, ...] | None = None   # None: every split the corpus has
  strict: bool = False
  face: bool = False                      # add the 22-point face block
  dims: int | None = None                 # None: the corpus' own (DEFAULT_DIMS)
  fps: float | None = None                # resample to this rate; None keeps the source rate
  max_text_chars: int | None = 1000
  overwrite: bool = False
  workers: int = 1                        # processes parsing How2Sign's JSON frames / extracting video poses
  world_landmarks: bool = False  # MediaPipe Holistic: the body from POSE_WORLD_LANDMARKS (metres, depth)
  # MediaPipe's body points carry a visibility (the chance the point is in the image and not hidden);
  # below this the position is the network's guess (an arm below the frame): masked and counted.
  # 0.5 is the threshold MediaPipe's own drawing utilities use; 0 keeps every point.
  min_visibility: float = MIN_VISIBILITY


class NoUsableExamples(ValueError):
  """A split of which not one record could be used: says how many were read and skipped, the main
  reasons with an example file each, and where the full list is (raised before TFDS sees an empty
  split, which would fail with an assertion of its own)."""

  def __init__(self, corpus: str, src: str, split: str, report: rp.ReadReport):
    self.corpus, self.src, self.split, self.report, self.listed_at = corpus, src, split, report, None
    super().__init__(self._message())

  def _message(self) -> str:
    report = self.report
    lines = [f"prepare {self.corpus}: no usable example in split {self.split!r} of {self.src}: "
             f"{len(report.skipped)} records skipped, {report.read} read"]
    by_reason: dict[str, list[dict]] = {}
    for item in report.skipped:
      by_reason.setdefault(item["reason"], []).append(item)
    for reason, items in sorted(by_reason.items(), key=lambda kv: -len(kv[1]))[:5]:
      first = items[0]
      lines.append(f"  {len(items):6d} x {reason}: e.g. {first['file']}"
                   + (f", record {first['record']}" if first.get("record") is not None else "")
                   + f": {first['detail']}")
    if not report.skipped:
      lines.append("  the corpus has no record in this split (choose the splits to prepare with --split)")
    if self.listed_at:
      lines.append(f"  every skipped record: {self.listed_at}")
    return "\n".join(lines)

  def listed(self, path: str) -> "NoUsableExamples":
    self.listed_at = path
    self.args = (self._message(),)
    return self


def check_source(corpus: str, src: str) -> None:
  """A corpus folder that does not exist or holds nothing, named before anything is read."""
  if not storage.exists(src):
    raise FileNotFoundError(f"prepare {corpus}: the corpus folder {src} does not exist (--src)")
  if storage.is_remote(src):
    return
  if os.path.isdir(src) and not os.listdir(src):
    raise FileNotFoundError(f"prepare {corpus}: the corpus folder {src} is empty (--src)")


def dataset_dir(out: str, corpus: str) -> str:
  return storage.join(out, BUILDER_NAME, corpus.replace(":", "_"), VERSION)


def _text(text: str | None) -> str:
  return text if text is not None else ""


class _Accumulator:
  """Running per-joint mean/std of present joints, and frame-length statistics, per split."""

  def __init__(self, joints: int, dims: int):
    self.count = np.zeros((joints, 1))
    self.sum = np.zeros((joints, dims))
    self.sum_sq = np.zeros((joints, dims))
    # The same of hand-relative features (fingers minus their wrist: gesture/features.py).
    self.rel_count = np.zeros((joints, 1))
    self.rel_sum = np.zeros((joints, dims))
    self.rel_sum_sq = np.zeros((joints, dims))
    self.lengths: list[int] = []
    self.frames = 0
    self.text_only = 0

  def add(self, pose: np.ndarray, confidence: np.ndarray) -> None:
    present = (confidence > 0)[..., None]
    self.count += present.sum(axis=0)
    self.sum += np.where(present, pose, 0).sum(axis=0)
    self.sum_sq += np.where(present, pose.astype(np.float64) ** 2, 0).sum(axis=0)
    relative, rel_present = hand_relative(pose.astype(np.float64), confidence > 0)
    rel_present = rel_present[..., None]
    self.rel_count += rel_present.sum(axis=0)
    self.rel_sum += np.where(rel_present, relative, 0).sum(axis=0)
    self.rel_sum_sq += np.where(rel_present, relative ** 2, 0).sum(axis=0)
    self.lengths.append(len(pose))
    self.frames += len(pose)

  @staticmethod
  def _mean_std(count, total, total_sq):
    counts = np.maximum(count, 1)
    mean = total / counts
    return mean, np.sqrt(np.maximum(total_sq / counts - mean ** 2, 0.0))

  def as_dict(self) -> dict:
    mean, std = self._mean_std(self.count, self.sum, self.sum_sq)
    rel_mean, rel_std = self._mean_std(self.rel_count, self.rel_sum, self.rel_sum_sq)
    lengths = np.array(self.lengths or [0])
    return dict(examples=len(self.lengths) + self.text_only, with_pose=len(self.lengths),
                text_only=self.text_only, frames=self.frames,
                frame_length=dict(min=int(lengths.min()), mean=float(lengths.mean()),
                                  p95=float(np.percentile(lengths, 95)), max=int(lengths.max())),
                joint_presence=(self.count[:, 0] / max(self.frames, 1)).round(4).tolist(),
                joint_mean=mean.round(5).tolist(), joint_std=std.round(5).tolist(),
                hand_relative_mean=rel_mean.round(5).tolist(), hand_relative_std=rel_std.round(5).tolist())


class _LocalDatasetInfo(tfds.core.DatasetInfo):
  """TFDS looks for a dataset's pre-computed info in its public bucket whenever a builder is made for
  a folder not prepared yet, leaving an empty temporary folder behind each time (one per `prepare`,
  in /tmp); our corpora are never there."""

  def initialize_from_bucket(self) -> None:
    pass


class SignCorpus(tfds.core.GeneratorBasedBuilder):
  """A prepared sign-language corpus (one builder config per corpus)."""
  VERSION = tfds.core.Version(VERSION)

  def __init__(self, *, options: PrepareOptions, **kwargs):
    self._options = options
    self.reports: dict[str, rp.ReadReport] = {}
    self.stats: dict[str, _Accumulator] = {}
    self._joints = skeletons.unified_skeleton(options.face).num_joints
    super().__init__(config=tfds.core.BuilderConfig(name=options.corpus.replace(":", "_")), **kwargs)

  # TFDS announces "Downloading and preparing dataset Unknown size …" and "downloaded … Subsequent calls
  # will reuse this data": nothing is downloaded here, and `prepare` prints its own summary.
  def _log_download_bytes(self) -> None:
    print(f"preparing {self._options.corpus} from {self._options.src}")

  def _log_download_done(self) -> None:
    pass

  def _info(self) -> tfds.core.DatasetInfo:
    joints, dims = self._joints, self._options.dims
    text = tfds.features.Text()
    return _LocalDatasetInfo(
        builder=self,
        description=
        f"{self._options.corpus} mapped to the unified skeleton ({joints} joints, {dims}D), normalised.",
        features=tfds.features.FeaturesDict({
            "id": text,
            "text": text,
            "gloss": text,
            "hamnosys": text,
            "hamnosys_symbols": text,
            "signer": text,
            "corpus": text,
            "pose": tfds.features.Tensor(shape=(None, joints, dims), dtype=np.float32),
            "confidence": tfds.features.Tensor(shape=(None, joints), dtype=np.float32),
            "center": tfds.features.Tensor(shape=(None, dims), dtype=np.float32),
            "scale": np.float32,
            "fps": np.float32,
            "has_pose": np.bool_,
        }))

  def _split_generators(self, dl_manager):
    corpus = self._options.corpus
    wanted = self._options.splits or corpora.available_splits(corpus, self._options.src)
    if not wanted:
      raise NoUsableExamples(corpus, self._options.src, "any", rp.ReadReport())
    # Written under the canonical names (train/dev/test); the corpus' own are in stats.json.
    return {corpora.canonical_split(corpus, s): self._generate_examples(corpora.canonical_split(corpus, s))
            for s in wanted}

  def _generate_examples(self, split: str):
    opts = self._options
    report = self.reports.setdefault(split, rp.ReadReport(strict=opts.strict))
    stats = self.stats.setdefault(split, _Accumulator(self._joints, opts.dims))
    options = {"max_text_chars": opts.max_text_chars, "workers": opts.workers}
    if opts.corpus == "videos":  # poses extracted once, kept beside the prepared data
      options["pose_cache"] = storage.join(opts.out, "video_poses", opts.corpus)
    seen: set[str] = set()
    for ex in corpora.read(opts.corpus, opts.src, split, strict=opts.strict, report=report, **options):
      if ex.id in seen:  # TFDS needs unique keys; a duplicate id is bad input, not a silent overwrite
        report.skip(rp.CorpusError("duplicate_id", opts.src, ex.id, "id", f"id seen twice in split {split}"))
        continue
      seen.add(ex.id)
      record = self._record(ex, report)
      if record is None:
        continue
      if record["has_pose"]:
        stats.add(record["pose"], record["confidence"])
      else:
        stats.text_only += 1
      yield ex.id, record
    if not seen or (stats.frames == 0 and stats.text_only == 0):
      raise NoUsableExamples(opts.corpus, opts.src, split, report)

  def _unified_normalised(self, pose: PoseSequence, face: bool):
    """(sequence, normalisation): `pose` on the unified skeleton at the prepared fps, normalised."""
    seq = to_unified(pose, face=face)
    if self._options.fps:
      seq = resample(seq, self._options.fps)
    return normalize(seq)

  def _record(self, ex: corpora.Example, report: rp.ReadReport) -> dict | None:
    opts = self._options
    joints, dims = self._joints, opts.dims
    record = {"id": ex.id, "text": _text(ex.text), "gloss": _text(ex.gloss), "hamnosys": _text(ex.hamnosys),
              "hamnosys_symbols": ",".join(ex.hamnosys_symbols), "signer": _text(ex.signer),
              "corpus": ex.corpus, "has_pose": ex.pose is not None}
    if ex.pose is None:
      return record | {
          "pose": np.zeros((0, joints, dims), np.float32),
          "confidence": np.zeros((0, joints), np.float32),
          "center": np.zeros((0, dims), np.float32),
          "scale": 1.0,
          "fps": 0.0
      }
    try:
      seq, norm = self._unified_normalised(ex.pose, opts.face)
      # Hands are judged where the detector drew them: in image space (world landmarks hang each hand
      # from the body's wrist, which would hide a hand that was found in the wrong place).
      image_seq = seq
      if opts.world_landmarks:
        if not has_world_landmarks(ex.pose):
          report.skip(
              rp.CorpusError(
                  "no_world_landmarks", opts.src, ex.id, "pose",
                  f"--world-landmarks, but the layout {ex.pose.skeleton!r} has no POSE_WORLD_LANDMARKS"))
          return None
        seq, norm = self._unified_normalised(with_world_landmarks(ex.pose), opts.face)
    except ValueError as e:
      report.skip(rp.CorpusError("cannot_normalise", opts.src, ex.id, "pose", str(e)))
      return None
    seq = _mask_implausible_hands(seq, image_seq, opts.src, ex.id, report)
    seq = _mask_unseen_body_joints(seq, ex.pose.skeleton, opts.min_visibility, report)
    pose, center = fit_dims(seq.data, dims), fit_dims(norm.center, dims)
    return record | {"pose": pose.astype(np.float32), "confidence": seq.confidence,
                     "center": center.astype(np.float32), "scale": norm.scale, "fps": seq.fps}


def _mask_implausible_hands(seq: PoseSequence, judged: PoseSequence, source: str, record: str,
                            report: rp.ReadReport) -> PoseSequence:
  """`seq` with each hand masked in the frames where, in `judged` (the same frames in image space),
  it cannot be a hand (`pose.plausibility`); every masked hand is listed under its record."""
  confidence = seq.confidence
  measures = hand_measures(judged.data, judged.mask)
  for (hand, block, _), frames_F in zip(HANDS, implausible_hands(judged.data, judged.mask).values()):
    if not frames_F.any():
      continue
    spread_F, gap_F = measures[hand]
    largest = lambda values: f"{np.nanmax(values[frames_F]):.2f}" if np.isfinite(values[frames_F]).any() else "-"
    report.mask(rp.CorpusError(
        rp.IMPLAUSIBLE_HAND, source, record, hand,
        f"{hand} masked in {describe(frames_F)}: its fingers up to {largest(spread_F)} shoulder widths from its "
        f"wrist (a hand: under {MAX_FINGER_SPREAD:g}), its wrist up to {largest(gap_F)} from the body's (under "
        f"{MAX_WRIST_GAP:g}); the detector lost the hand"))
    confidence = confidence.copy()
    confidence[frames_F, block] = 0.0
  if confidence is seq.confidence:
    return seq
  return seq.replace(data=np.where(confidence[..., None] > 0, seq.data, 0.0), confidence=confidence)


def _mask_unseen_body_joints(seq: PoseSequence, source_skeleton: str, min_visibility: float,
                             report: rp.ReadReport) -> PoseSequence:
  """`seq` with the body joints MediaPipe saw below `min_visibility` masked (pose.plausibility), counted
  as a note per joint-frame. Runs after the hands are judged (their test reads the body's wrist)."""
  unseen = unseen_body_joints(seq.confidence, source_skeleton, min_visibility)
  if unseen.any():
    report.note(rp.BODY_NOT_VISIBLE, int(unseen.sum()))
  return without(seq, unseen)


def prepare(options: PrepareOptions) -> dict:
  """Prepares one corpus; returns the statistics written to stats.json. `out` may be a bucket
  (`gs://…`): ArrayRecord cannot write to one, so the dataset is built in a local temporary folder
  and uploaded; `dataset_info.json`, which makes it visible to readers, is uploaded last."""
  if options.dims is None:
    options = dataclasses.replace(options, dims=DEFAULT_DIMS.get(options.corpus, 3))
  options = dataclasses.replace(options, out=storage.absolute(options.out), src=storage.absolute(options.src))
  check_source(options.corpus, options.src)
  storage.check_bucket(options.out)
  target = dataset_dir(options.out, options.corpus)
  if storage.exists(target):
    if not options.overwrite:
      raise FileExistsError(f"{target} exists; pass --overwrite to prepare it again")
    storage.rmtree(target)
  try:
    return _prepare_to(options, target)
  except NoUsableExamples as e:  # nothing was written; the list of what was skipped is kept beside
    _remove_empty_folders(options.out, options.corpus)  # what TFDS made for a dataset it never wrote
    listing = storage.join(options.out, f"{options.corpus.replace(':', '_')}.skipped.jsonl")
    storage.makedirs(options.out)
    storage.write_text(listing, e.report.jsonl())
    raise e.listed(listing) from None
  except Exception:
    _remove_empty_folders(options.out, options.corpus)
    raise


def _remove_empty_folders(out: str, corpus: str) -> None:
  """The empty folders TFDS makes before it writes (its downloads/ and the dataset's own folder)."""
  if storage.is_remote(out):
    return
  roots = [
      os.path.join(out, "downloads"),
      os.path.dirname(dataset_dir(out, corpus)),
      os.path.join(out, BUILDER_NAME)
  ]
  for root in roots:
    for folder, _, _ in sorted(os.walk(root), key=lambda entry: -len(entry[0])):  # deepest first
      if not os.listdir(folder):
        os.rmdir(folder)


def _prepare_to(options: PrepareOptions, target: str) -> dict:
  if storage.is_remote(options.out):
    with tempfile.TemporaryDirectory(prefix="asl-prepare-") as local:
      stats = _prepare_into(dataclasses.replace(options, out=local))
      local_target = dataset_dir(local, options.corpus)
      info = os.path.join(local_target, "dataset_info.json")
      with open(info, encoding="utf-8") as handle:
        info_text = handle.read()
      os.remove(info)
      storage.upload(local_target, target)
      storage.write_text(storage.join(target, "dataset_info.json"), info_text)
    stats["dataset_dir"] = target
    storage.write_json(storage.join(target, "stats.json"), {k: v for k, v in stats.items() if k != "report"})
    return stats
  return _prepare_into(options)


def _prepare_into(options: PrepareOptions) -> dict:
  target = dataset_dir(options.out, options.corpus)
  start = time.perf_counter()
  builder = SignCorpus(options=options, data_dir=options.out, file_format="array_record")
  builder.download_and_prepare()
  seconds = time.perf_counter() - start
  stats = {
      "corpus": options.corpus, "source": options.src, "dataset_dir": target,
      "skeleton": skeletons.unified_skeleton(options.face).name, "dims": options.dims,
      "source_splits": {s: corpora.source_split(options.corpus, s) for s in builder.stats},
      "seconds": round(seconds, 3),
      "splits": {s: acc.as_dict() for s, acc in builder.stats.items()},
      "problems": {s: report.counts() for s, report in builder.reports.items()},
  }
  frames = sum(v["frames"] for v in stats["splits"].values())
  stats["frames_per_second"] = round(frames / max(seconds, 1e-9), 1)
  with open(os.path.join(target, "stats.json"), "w", encoding="utf-8") as handle:
    json.dump(stats, handle, indent=1, ensure_ascii=False)
  skipped = rp.ReadReport()
  for report in builder.reports.values():
    skipped.skipped += report.skipped
    skipped.masked += report.masked
    skipped.read += report.read
    skipped.notes.update(report.notes)  # counted, not errors (text-only entries, unseen body points)
  skipped.write(os.path.join(target, "skipped.jsonl"))
  stats["report"] = skipped
  return stats


def print_summary(stats: dict) -> None:
  """What `prepare` read and wrote, per split, and what it skipped (the report is taken out of `stats`)."""
  report = stats.pop("report", None)
  print(f"\n{stats['corpus']}: prepared into {stats['dataset_dir']} "
        f"({stats['skeleton']}, {stats['dims']}D) in {stats['seconds']:.1f}s, "
        f"{stats['frames_per_second']:.0f} frames/s")
  for split, split_stats in stats["splits"].items():
    fl = split_stats["frame_length"]
    print(
        f"  {split:6s} {split_stats['examples']:6d} examples ({split_stats['text_only']} text-only), {split_stats['frames']:8d} frames, "
        f"length {fl['min']}-{fl['max']} (mean {fl['mean']:.0f})")
  if report is not None:
    print("  " + report.summary().replace("\n", "\n  "))
    if report.skipped or report.masked:
      print(f"  the list of skipped records and masked frames: {stats['dataset_dir']}/skipped.jsonl")


def prepared_splits(out: str, corpus: str) -> list[str]:
  """The split names of a prepared corpus (raises, naming the folder and the command, when there is none)."""
  path = dataset_dir(out, corpus)
  info = storage.join(path, "dataset_info.json")
  if not storage.exists(info):
    raise FileNotFoundError(
        f"no prepared {corpus!r} dataset at {path} (data.prepared={out!r}); "
        f"write it with `asl-motiongpt prepare --corpus {corpus} --src ... --out {out or 'DIR'}`")
  return [s["name"] for s in storage.read_json(info).get("splits", [])]


def prepared_statistics(out: str, corpus: str, split: str) -> dict:
  """One split's statistics from a prepared corpus' stats.json (joint mean/std, frame lengths, ...)."""
  path = storage.join(dataset_dir(out, corpus), "stats.json")
  if not storage.exists(path):
    raise FileNotFoundError(f"no stats.json at {path}: prepare {corpus!r} again (`asl-motiongpt prepare`)")
  splits = storage.read_json(path)["splits"]
  if canonical(corpus, split) not in splits:
    raise KeyError(f"{path} has no statistics of split {split!r} (it has {', '.join(splits)})")
  return splits[canonical(corpus, split)]


def canonical(corpus: str, split: str) -> str:
  """A split named the corpus' own way (How2Sign's `val`) as prepared (`dev`); unknown names unchanged."""
  try:
    return corpora.canonical_split(corpus, split)
  except (ValueError, KeyError):
    return split


def check_prepared_split(out: str, corpus: str, split: str) -> None:
  found = prepared_splits(out, corpus)
  split = canonical(corpus, split)
  if split not in found:
    hint = (" (prepared before split names became train/dev/test: prepare it again with --overwrite)"
            if split == "dev" and ("val" in found or "validation" in found) else "")
    raise FileNotFoundError(
        f"the prepared {corpus!r} dataset at {dataset_dir(out, corpus)} has no split {split!r}; "
        f"it has {', '.join(found) or 'none'}{hint}. Prepare that split "
        f"(`asl-motiongpt prepare --corpus {corpus} --split {split} ...`) or choose another "
        "(data.eval_split / --split)")


def load_prepared(out: str, corpus: str, split: str):
  """Random-access source of a prepared split (records are dicts of numpy arrays / bytes)."""
  check_prepared_split(out, corpus, split)
  builder = tfds.builder_from_directory(dataset_dir(out, corpus))
  return builder.as_data_source(split=canonical(corpus, split))
