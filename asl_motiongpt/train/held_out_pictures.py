"""What an LLM stage makes of a fixed held-out sentence, drawn at each held-out evaluation so that a
run can be watched in TensorBoard (Images tab: `eval/generated_sign`).

    picture = HeldOutPicture(system, config, stage_name, mesh, rules)
    picture(params)   # {"eval/generated_sign": PIL image}

The first held-out example with poses and a sentence (data.eval_split of data.corpus) is signed
greedily with the parameters being trained, in place on the training mesh; the generated sign is
drawn below the example's own signer on one time axis (pose/render.py), titled with what the same
parameters read back from it (the back-translation). A failed generation (no motion code) shows the
reference alone, saying so. Every process decodes (the programs span them); process 0 writes.
With train.eval_decode > 0 the held-out decoding has signed that sentence already, with the same
parameters, just before (`decoding`): its generation and read-back are drawn, nothing is decoded twice.
"""
from __future__ import annotations

from asl_motiongpt.data.prepare import load_prepared
from asl_motiongpt.model.translator import Translator
from asl_motiongpt.pose import render
from asl_motiongpt.pose.sequence import PoseSequence

TAG = "eval/generated_sign"


class HeldOutPicture:
  def __init__(self, system, config, stage_name: str, mesh, rules, decoding=None):
    source = load_prepared(config.data.prepared, config.data.corpus, config.data.eval_split)
    record = next((source[i] for i in range(len(source)) if source[i]["has_pose"] and source[i]["text"]), None)
    if record is None:
      raise ValueError(f"stage {stage_name!r}: train.eval_pictures needs a held-out example with poses and a "
                       f"sentence; {config.data.corpus} {config.data.eval_split} has none")
    self.sentence = record["text"].decode()
    self.reference = PoseSequence(record["pose"], record["confidence"], float(record["fps"]), "unified")
    self._system, self._stage, self._mesh, self._rules = system, stage_name, mesh, rules
    self._model, self._decoding = None, decoding

  def __call__(self, params) -> dict:
    if self._decoding is not None and self._decoding.first is not None:
      # train/held_out_decoding.py signed and read back the same first example with these parameters
      model, (generation, read_back) = self._decoding.model, self._decoding.first
    else:
      if self._model is None:
        self._model = Translator(self._system, params, self._stage, self._mesh, self._rules)
      model = self._model.with_params(params)
      generation = model.generate_codes([self.sentence])[0]
      read_back = None if generation.failed else model.codes_to_text([generation.codes])[0]
    reference_title = f"reference: {self.sentence}"
    if generation.failed:
      image = render.contact_sheet_image(self.reference, title=reference_title + " (generation failed: no motion code)")
      return {TAG: image}
    generated = model.codes_to_pose(generation.codes, self.reference.fps)
    return {TAG: render.comparison_image(self.reference, generated, titles=(reference_title, f"read back: {read_back}"))}
