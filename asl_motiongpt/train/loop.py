"""The training loop every stage runs: step -> log -> hooks -> checkpoint, until done or stopped.

The stage's newest readable checkpoint (train state + data iterator) is restored first
(`restore_or_init`), so a rerun after a crash, `kill -9` or preemption continues with the same data
order. SIGTERM/SIGINT finish the current step, save and return; a non-finite loss stops with an
error and keeps the last good checkpoint; `stop_after_steps` saves and returns after that many
steps of this run.

Everything else that happens every N steps is a `Hook` (as Levanter's `add_hook`): held-out
evaluation, the best checkpoint and patience are one (`train/hooks.py`). A hook runs after every
`every`-th step and after the last, may end the stage early, and adds what it must carry across a
resume to every checkpoint's meta. The time hooks take is kept out of the throughput the progress
bar shows.
"""
from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import jax
from tqdm import tqdm

from asl_motiongpt.checkpoints import StageCheckpoints
from asl_motiongpt.train.logging_utils import MetricsWriter
from asl_motiongpt.train.preemption import StopRequested


class NonFiniteLoss(RuntimeError):
  pass


class Hook:
  """Something the loop runs every `every` steps (0: never) and after the last step."""
  every: int = 0

  def start(self, state, step: int) -> None:
    """Before the first step of this run (`step` is where it begins: 0 for a fresh stage)."""

  def __call__(self, state, step: int) -> bool:
    """After step `step`; True ends the stage early (after saving)."""
    return False

  def checkpoint_meta(self) -> dict:
    """What a resumed run needs from this hook, stored in every checkpoint's meta."""
    return {}

  def close(self) -> None:
    pass


@dataclasses.dataclass(frozen=True)
class TrainSettings:
  """The stage's train settings the loop reads (a resolved stage's `steps` and `train.*`)."""
  steps: int
  log_every: int
  checkpoint_every: int
  stop_after_steps: int = 0

  @classmethod
  def of(cls, stage) -> "TrainSettings":
    return cls(int(stage.steps), int(stage.train.log_every), int(stage.train.checkpoint_every),
               int(stage.train.stop_after_steps or 0))


@dataclasses.dataclass
class Program:
  """What the loop runs: a compiled step over a data iterator, saved and logged."""
  stage: str
  step_fn: Callable            # (state, process-local batch) -> (state, metrics)
  data_iter: Any
  checkpoints: StageCheckpoints
  writer: MetricsWriter
  meta: dict                   # stored with every checkpoint
  units_per_step: int
  unit: str                    # tokens, frames, pairs: the throughput's unit
  postfix: Callable[[dict], dict] = lambda metrics: {}
  hooks: Sequence[Hook] = ()


@dataclasses.dataclass
class LoopResult:
  state: dict
  history: list
  last: dict
  stopped: str | None
  early_stopped: int | None = None    # the step where a hook ended the stage


def restore_or_init(checkpoints: StageCheckpoints, abstract_state, init, data_iter, stage: str):
  """(state, meta): the stage's newest readable checkpoint restored straight into the shardings that
  `abstract_state` (ShapeDtypeStructs) carries (each process reads only its shards), with the data
  iterator's position; else (init(), None). `init` runs only when nothing was restored (also when
  every checkpoint was unreadable), so a resumed stage never computes a start the checkpoint
  overwrites."""
  target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), abstract_state)
  restored = checkpoints.restore(target, data_iter)
  if restored is None:
    return init(), None
  step, state, meta = restored
  if jax.process_index() == 0:
    print(f"[{stage}] resumed from step {step} ({checkpoints.directory})")
  return state, meta


def run(program: Program, state, settings: TrainSettings) -> LoopResult:
  steps = settings.steps
  start = int(state["step"])
  history, last, stopped, early_stopped = [], {}, None, None
  for hook in program.hooks:
    hook.start(state, start)
  t0, hook_seconds = time.perf_counter(), 0.0
  with StopRequested() as stop, tqdm(total=steps, initial=start, desc=program.stage,
                                     disable=jax.process_index() != 0) as bar:
    for step in range(start, steps):
      state, metrics = program.step_fn(state, next(program.data_iter))
      done = step + 1
      if done % settings.log_every == 0 or done == steps:
        last = _logged(program, done, metrics, rate=(done - start) * program.units_per_step
                       / max(time.perf_counter() - t0 - hook_seconds, 1e-9))
        history.append({"step": done, **last})
        rate = {f"{program.unit}/s": f"{last[f'{program.unit}_per_s']:.0f}"}
        bar.set_postfix(loss=f"{last['loss']:.4f}", **rate, **program.postfix(last))
      bar.update(1)
      hooks_began = time.perf_counter()
      due = [hook for hook in program.hooks if hook.every and (done % hook.every == 0 or done == steps)]
      early = any([hook(state, done) for hook in due])  # a list: every due hook runs
      hook_seconds += time.perf_counter() - hooks_began
      early = early and done < steps
      pause = settings.stop_after_steps and done - start >= settings.stop_after_steps
      stop_now = stop.agreed()  # every process stops after the same step, whichever was signalled
      if done % settings.checkpoint_every == 0 or done == steps or stop_now or pause or early:
        meta = dict(program.meta)
        for hook in program.hooks:
          meta.update(hook.checkpoint_meta())
        program.checkpoints.save(done, state, program.data_iter, meta)
        program.writer.flush()  # every step logged so far is stored before a crash could lose it
      if early:
        early_stopped = done
        break
      if stop_now or pause:
        stopped = f"signal {stop.signal}" if stop_now else "stop_after_steps"
        # every process says it (a pod's logs are per host): the same step everywhere
        bar.write(f"[{program.stage}] stopped ({stopped}) after step {done}; saved, resume with the same command")
        break
  program.checkpoints.close()
  for hook in program.hooks:
    hook.close()
  return LoopResult(state, history, last, stopped, early_stopped)


def _logged(program: Program, step: int, metrics, rate: float) -> dict:
  """The step's metrics on the host, written to the logs; a non-finite loss ends the stage here."""
  last = {k: float(v) for k, v in jax.device_get(metrics).items()}
  if not math.isfinite(last["loss"]):
    program.checkpoints.close()
    raise NonFiniteLoss(f"[{program.stage}] loss is {last['loss']} at step {step}; the last good checkpoint "
                        f"(step {program.checkpoints.latest_step()}) is kept in {program.checkpoints.directory}")
  last[f"{program.unit}_per_s"] = rate
  program.writer.write(step, last)
  return last
