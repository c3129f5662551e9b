"""One driver for every stage kind: a kind says what is its own, the driver does the rest.

A stage kind (`train/tokenizer_stage.py`, `llm_stage.py`, `evaluator_stage.py`) is a `StageKind`:
its `program()` (mesh, optimizer, boxed state, step, example batch, units), its data, how a fresh
state starts, its hooks, the line it prints and what it does when it finishes. The driver owns the
skeleton they share:

  batch check -> data -> abstract state and shardings -> compiled step -> checkpoints -> restore or
  start -> metrics writer -> the loop (train/loop.py) with the kind's hooks -> the kind's finish ->
  summary.json

and `train --dry-run` (train/dry_run.py) builds the same programs and compiles them for a planned
topology instead of running them. A new stage kind is one module with one `StageKind`.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax

from asl_motiongpt import storage
from asl_motiongpt.checkpoints import StageCheckpoints
from asl_motiongpt.train import loop, step as step_compiler
from asl_motiongpt.train.logging_utils import MetricsWriter
from asl_motiongpt.train.optimizer import Optimizer


@dataclasses.dataclass
class StageProgram:
  """A stage's training program, before anything is allocated or compiled."""
  mesh: Any
  rules: tuple
  tx: Optimizer                 # the transformation and its numbers (arguments of the step)
  init_boxed: Callable[[], dict]  # the train state with logical axes (eval_shape'd; jit-created when fresh)
  step: Callable                # step(state, batch, hyper) -> (state, metrics), not yet compiled
  example: dict                 # a process-local batch of zeros in the stage's layout
  units_per_step: int
  unit: str                     # tokens, frames, pairs
  trainable: Any = None         # a bool pytree over the parameters (None: all train)
  model_flops: float | None = None  # per step, for the dry run's table (LLM stages)


@dataclasses.dataclass
class CompiledProgram:
  program: StageProgram
  abstract_state: dict          # ShapeDtypeStructs in their shardings (nothing allocated)
  shardings: dict
  step: Any                     # compiled: step(state, process-local batch) -> (state, metrics)


def compile_program(program: StageProgram) -> CompiledProgram:
  abstract, shardings = step_compiler.abstract_state(program.init_boxed, program.mesh, program.rules)
  step = step_compiler.compile_step(program.step, program.mesh, shardings, program.example, program.rules,
                                    program.tx.arguments())
  return CompiledProgram(program, abstract, shardings, step)


class StageKind:
  """What one kind of stage supplies. `stage` is the resolved stage (chain_config.resolve_stage)."""
  stage: Any

  def program(self, devices=None) -> StageProgram:
    raise NotImplementedError

  def data(self):
    """This process's batches (an iterator dataset whose state the checkpoints keep)."""
    raise NotImplementedError

  def start(self, compiled: CompiledProgram) -> dict:
    """The train state of a stage that has no checkpoint yet, created in its shardings."""
    return step_compiler.init_state(compiled.program.init_boxed, compiled.shardings)

  def hooks(self, compiled: CompiledProgram, writer: MetricsWriter, resumed_meta: dict | None) -> list:
    return []

  def describe(self, compiled: CompiledProgram) -> str:
    return ""

  def meta(self) -> dict:
    """Stored with every checkpoint of the stage."""
    return {}

  def postfix(self, metrics: dict) -> dict:
    """Extra figures on the progress bar."""
    return {}

  def finish(self, result: loop.LoopResult, compiled: CompiledProgram, writer: MetricsWriter) -> dict:
    """After the last step: the stage's summary (its own figures; `history` is added by the driver)."""
    raise NotImplementedError


def check_batch(stage) -> None:
  if stage.batch_size % jax.process_count():
    raise ValueError(f"stage {stage.name!r}: batch size {stage.batch_size} does not split over "
                     f"{jax.process_count()} processes")


def run_stage(kind: StageKind, workdir: str) -> dict:
  """Trains one stage to its end (or until stopped); returns its summary, with `history`."""
  stage = kind.stage
  check_batch(stage)
  data_iter = iter(kind.data())  # before compiling: data that cannot feed the stage is said first
  compiled = compile_program(kind.program())
  checkpoints = StageCheckpoints(workdir, stage.name, keep=stage.train.keep_checkpoints)
  state, resumed = loop.restore_or_init(checkpoints, compiled.abstract_state, lambda: kind.start(compiled), data_iter,
                                        stage.name)
  line = kind.describe(compiled)
  if line and jax.process_index() == 0:
    print(f"[{stage.name}] {line}")
  writer = MetricsWriter(storage.join(workdir, stage.name, "logs"))
  program = loop.Program(stage.name, compiled.step, data_iter, checkpoints, writer, kind.meta(),
                         compiled.program.units_per_step, compiled.program.unit, kind.postfix,
                         hooks=kind.hooks(compiled, writer, resumed))
  out = loop.run(program, state, loop.TrainSettings.of(stage))
  if out.stopped is not None:
    writer.close()
    return {"stopped": True, "step": int(out.state["step"])}
  summary = {"stage": stage.name, "step": int(out.state["step"]), "done": True, **kind.finish(out, compiled, writer)}
  writer.close()
  if jax.process_index() == 0:
    storage.write_json(storage.join(workdir, stage.name, "summary.json"), summary)
  return {**summary, "history": out.history}
