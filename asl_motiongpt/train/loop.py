"""The training loop every stage runs: restore -> step -> log -> checkpoint, until done or stopped.

Resumes from the stage's newest readable checkpoint (train state + data iterator), so a rerun after
a crash, `kill -9` or preemption continues with the same data order. SIGTERM/SIGINT finish the
current step, save and return; a non-finite loss stops with an error and keeps the last good
checkpoint; `stop_after_steps` saves and returns after that many steps of this run. With an
`evaluate(state) -> metrics` and `eval_every`, held-out metrics are logged (prefix "eval") every
`eval_every` steps and at the end; with a `BestCheckpoint`, the parameters at the best evaluation
are kept apart (the record of the best so far travels in every checkpoint's meta, so a resumed
run continues with it exactly), and with `patience` the stage ends early after that many held-out
evaluations without a new best. The best is by `best_metric` (a key of evaluate's metrics: the
held-out loss by default, or a translation score such as BLEU-4, `maximize`d).
"""
from __future__ import annotations

import dataclasses
import math
import time

import jax
from tqdm import tqdm

from asl_motiongpt.checkpoints import BestCheckpoint, StageCheckpoints
from asl_motiongpt.train.logging_utils import MetricsWriter
from asl_motiongpt.train.preemption import StopRequested


class NonFiniteLoss(RuntimeError):
  pass


@dataclasses.dataclass
class LoopResult:
  state: dict
  history: list
  last: dict
  stopped: str | None
  evals: list = dataclasses.field(default_factory=list)
  best: dict | None = None            # {"step", <best_metric>: value} of the best evaluation, when kept
  early_stopped: int | None = None    # the step where patience ran out


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
  step, ts, meta = restored
  if jax.process_index() == 0:
    print(f"[{stage}] resumed from step {step} ({checkpoints.directory})")
  return ts, meta


def run(*, stage: str, checkpoints: StageCheckpoints, writer: MetricsWriter, ts, step_fn, data_iter, steps: int,
        log_every: int, checkpoint_every: int, stop_after_steps: int, meta: dict, units_per_step: int,
        unit: str, postfix=lambda m: {}, evaluate=None, eval_every: int = 0, keep_best: BestCheckpoint | None = None,
        best: dict | None = None, patience: int = 0, best_metric: str = "loss", maximize: bool = False) -> LoopResult:
  start = int(ts["step"])
  history, last, stopped, evals, early_stopped = [], {}, None, [], None
  eval_seconds = 0.0  # kept out of the throughput (tokens/s, MFU) the progress bar shows

  def held_out(state, step: int) -> dict:
    nonlocal eval_seconds, best
    t = time.perf_counter()
    metrics = evaluate(state)
    eval_seconds += time.perf_counter() - t
    writer.write(step, metrics, prefix="eval")
    evals.append({"step": step, **metrics})
    if keep_best is not None and is_better(metrics[best_metric]):
      best = {"step": step, best_metric: metrics[best_metric]}
      keep_best.save(step, state["params"], best)
    return metrics

  def is_better(value: float) -> bool:
    if best is None or best_metric not in best:  # none yet, or a record by another metric (the config changed)
      return True
    return value > best[best_metric] if maximize else value < best[best_metric]

  def patience_ran_out(step: int) -> bool:
    return bool(patience and best is not None and eval_every and step - best["step"] >= patience * eval_every)

  if evaluate is not None and eval_every and start == 0:  # where the stage begins, for comparison
    held_out(ts, 0)
  t0, eval_seconds = time.perf_counter(), 0.0
  with StopRequested() as stop, tqdm(total=steps, initial=start, desc=stage, disable=jax.process_index() != 0) as bar:
    for step in range(start, steps):
      ts, metrics = step_fn(ts, next(data_iter))
      done = step + 1
      if done % log_every == 0 or done == steps:
        last = {k: float(v) for k, v in jax.device_get(metrics).items()}
        if not math.isfinite(last["loss"]):
          checkpoints.close()
          raise NonFiniteLoss(f"[{stage}] loss is {last['loss']} at step {done}; the last good checkpoint "
                              f"(step {checkpoints.latest_step()}) is kept in {checkpoints.directory}")
        rate = (done - start) * units_per_step / (time.perf_counter() - t0 - eval_seconds)
        last[f"{unit}_per_s"] = rate
        writer.write(done, last)
        history.append({"step": done, **last})
        bar.set_postfix(loss=f"{last['loss']:.4f}", **{f"{unit}/s": f"{rate:.0f}"}, **postfix(last))
      bar.update(1)
      if evaluate is not None and eval_every and (done % eval_every == 0 or done == steps):
        held = held_out(ts, done)
        if jax.process_index() == 0:
          bar.write(f"[{stage}] step {done}: held-out " + ", ".join(f"{k} {v:.4g}" for k, v in held.items())
                    + (f" (step 0: loss {evals[0]['loss']:.4g})" if evals[0]["step"] == 0 else ""))
      pause = stop_after_steps and done - start >= stop_after_steps
      stop_now = stop.agreed()  # every process stops after the same step, whichever was signalled
      early = done < steps and patience_ran_out(done)
      if done % checkpoint_every == 0 or done == steps or stop_now or pause or early:
        checkpoints.save(done, ts, data_iter, {**meta, "best": best})
        writer.flush()  # every step logged so far is stored before a crash could lose it
      if early:
        early_stopped = done
        bar.write(f"[{stage}] early stop after step {done}: no better held-out {best_metric} in {patience} "
                  f"evaluations (best {best[best_metric]:.4g} at step {best['step']})")
        break
      if stop_now or pause:
        stopped = f"signal {stop.signal}" if stop_now else "stop_after_steps"
        # every process says it (a pod's logs are per host): the same step everywhere
        bar.write(f"[{stage}] stopped ({stopped}) after step {done}; saved, resume with the same command")
        break
  checkpoints.close()
  if keep_best is not None:
    keep_best.close()
  return LoopResult(ts, history, last, stopped, evals, best, early_stopped)
