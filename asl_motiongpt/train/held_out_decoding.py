"""Translation quality measured inside the training loop, for picking the best checkpoint by it.

    score = HeldOutDecoding(system, config, stage_name, mesh, rules, examples=16)
    score(params)   # {"bleu4": ..., "back_translation_bleu4": ...}

The held-out loss falls long after translations stop improving (and can rise while BLEU still
climbs), so papers select checkpoints by dev BLEU. Here the first `examples` held-out examples
(data.eval_split of data.corpus, with poses and a sentence) are decoded greedily with the
parameters being trained, in place on the training mesh:
- bleu4: sign -> text, the example's motion codes translated, against its sentence;
- back_translation_bleu4: text -> sign -> text, the sentence signed and the sign read back by the
  same parameters (a failed generation reads back as nothing), against the sentence.
BLEU under the `slt` protocol (metrics/text_metrics.py), as `asl-motiongpt eval` reports it. The
examples' codes are computed once (the gesture tokenizer is frozen in LLM stages).
"""
from __future__ import annotations

from asl_motiongpt.data.prepare import load_prepared
from asl_motiongpt.metrics.text_metrics import translation_metrics
from asl_motiongpt.model.translator import Translator
from asl_motiongpt.pose.sequence import PoseSequence

# train.best_metric -> does a higher value mean better
BEST_METRICS = {"loss": False, "bleu4": True, "back_translation_bleu4": True}


class HeldOutDecoding:
  def __init__(self, system, config, stage_name: str, mesh, rules, examples: int):
    source = load_prepared(config.data.prepared, config.data.corpus, config.data.eval_split)
    records = []
    for index in range(len(source)):
      record = source[index]
      if record["has_pose"] and record["text"]:
        records.append(record)
      if len(records) == examples:
        break
    if not records:
      raise ValueError(
          f"stage {stage_name!r}: train.eval_decode needs held-out examples with poses and a sentence; "
          f"{config.data.corpus} {config.data.eval_split} has none")
    self.references = [r["text"].decode() for r in records]
    self._poses = [PoseSequence(r["pose"], r["confidence"], float(r["fps"]), "unified") for r in records]
    self._system, self._stage, self._mesh, self._rules = system, stage_name, mesh, rules
    self._model, self._codes = None, None
    self.first = None  # (GeneratedCodes, read back) of the first example at the last call (for pictures)

  @property
  def model(self) -> Translator | None:
    return self._model

  def __call__(self, params) -> dict:
    """The metrics of `params` (the training state's, in their shardings on the training mesh)."""
    if self._model is None:
      self._model = Translator(self._system, params, self._stage, self._mesh, self._rules)
      self._codes = self._model.pose_codes_many(self._poses)
    model = self._model.with_params(params)
    translated = model.codes_to_text(self._codes)
    signed = model.generate_codes(self.references)
    readable = [g.codes for g in signed if not g.failed]
    read = iter(model.codes_to_text(readable) if readable else [])
    back = [next(read) if not g.failed else "" for g in signed]
    self.first = (signed[0], back[0])
    return {"bleu4": translation_metrics(translated, self.references)["bleu4"],
            "back_translation_bleu4": translation_metrics(back, self.references)["bleu4"]}
