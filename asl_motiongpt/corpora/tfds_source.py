"""Optional source: the `sign_language_datasets` TFDS builders (install the `tfds` extra).

They download and cache the corpora themselves (this needs the network, which our tests never
use) and yield examples whose `pose` is {data [frames, 1, points, dims], conf [frames, 1, points],
fps}. `from_tfds_example` turns one such example into our `Example`; it is the part we test.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from asl_motiongpt.corpora import report as rp
from asl_motiongpt.corpora.example import Example, check_pose
from asl_motiongpt.pose import skeletons
from asl_motiongpt.pose.sequence import PoseSequence

# our corpus name -> (TFDS builder name, pose layout it ships, text field, gloss field)
BUILDERS = {
    "phoenix14t": ("rwth_phoenix2014_t", "holistic", "holistic_543", "text", "gloss"),
    "how2sign": ("how2sign", "openpose", "openpose_137", "text", None),
}


def _as_str(value) -> str | None:
  if value is None:
    return None
  if isinstance(value, (bytes, np.bytes_)):
    return bytes(value).decode("utf-8")
  return str(value)


def from_tfds_example(example: dict, corpus: str, skeleton: str, text_field: str,
                      gloss_field: str | None, report: rp.ReadReport, split: str) -> Example:
  entry_id = _as_str(example.get("id"))
  pose = example["pose"]
  data = np.asarray(pose["data"], np.float32)[:, 0]
  conf = np.asarray(pose["conf"], np.float32)[:, 0]
  expected = skeletons.get(skeleton).num_joints
  if data.ndim != 3 or data.shape[1] != expected:
    raise rp.CorpusError(rp.WRONG_VALUE_COUNT, f"tfds:{corpus}", entry_id, "pose/data",
                         f"shape {data.shape}, expected [frames, {expected}, dims]")
  seq = check_pose(PoseSequence(data, conf, float(pose["fps"]), skeleton), report,
                   f"tfds:{corpus}", entry_id)
  return Example(id=entry_id, text=_as_str(example.get(text_field)),
                 gloss=_as_str(example.get(gloss_field)) if gloss_field else None, hamnosys=None,
                 signer=_as_str(example.get("signer")), corpus=corpus, pose=seq, split=split)


def read(corpus: str, split: str, report: rp.ReadReport, data_dir: str | None = None) -> Iterator[Example]:
  try:
    import sign_language_datasets.datasets  # noqa: F401  (registers the builders)
    from sign_language_datasets.datasets.config import SignDatasetConfig
    import tensorflow_datasets as tfds
  except ImportError as e:
    raise ImportError("the TFDS source needs the optional extra: pip install 'asl-motiongpt[tfds]'") from e
  if corpus not in BUILDERS:
    raise KeyError(f"no TFDS builder for {corpus!r}; available: {sorted(BUILDERS)}")
  builder, include_pose, skeleton, text_field, gloss_field = BUILDERS[corpus]
  config = SignDatasetConfig(name=f"asl_motiongpt_{include_pose}", include_video=False,
                             include_pose=include_pose)
  dataset = tfds.load(builder, builder_kwargs=dict(config=config), split=split, data_dir=data_dir)
  for example in tfds.as_numpy(dataset):
    with report.record():
      yield from_tfds_example(example, corpus, skeleton, text_field, gloss_field, report, split)
      report.read += 1
