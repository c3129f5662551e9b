"""`train --dry-run --fit`: the plan that fits the device memory with the least recomputation.

The dry run compiles a chain's stages for planned devices; this module compiles it again under the
memory knobs the config has, cheapest first, and stops at the first setting under which every stage
fits. What it prints are the overrides to paste, so the plan that fits is the run that runs:

    asl-motiongpt train --config configs/strategies/staged.py --dry-run --fit --topology tpu:v5e-16 \\
        --config.llm.hf_dir=llama3-8b/

The knobs are tried in the order of what they cost at run time: sharding the state over every
device (FSDP; nothing recomputed), the loss in chunks of positions, the layers under one scan,
gradient accumulation (the same FLOPs in more, smaller matmuls), then rematerialisation of the
activations (recomputed in the backward pass), partial before full, and more accumulation on top.
Each is kept only where it lowers the peak of the stages that do not fit (a compiler may plan a
scanned stack larger than an unrolled one). Only those stages are compiled for each setting; under
the one that fits, the other stages are compiled too, so that the plan printed is the whole chain's.
"""
from __future__ import annotations

import copy
import dataclasses

from asl_motiongpt.config_loader import apply_override
from asl_motiongpt.train import dry_run

SHARD_EVERYWHERE = ("--config.mesh.fsdp=-1", "--config.mesh.data=1")  # tensor parallelism stays as set
CHUNKED_LOSS = ("--config.train.loss_chunk=64",)
SCANNED = ("--config.llm.scan_layers=true",)
PARTIAL_REMAT = ("--config.llm.remat=dots_with_no_batch_dims_saveable",)
FULL_REMAT = ("--config.llm.remat=full",)


def accumulation(steps: int) -> tuple[str, ...]:
  return (f"--config.train.accumulation={steps}",)


# Cheapest first (see the module docstring). A later knob on the same field replaces the earlier one.
KNOBS: tuple[tuple[str, ...], ...] = (SHARD_EVERYWHERE, CHUNKED_LOSS, SCANNED, accumulation(2), accumulation(4),
                                     PARTIAL_REMAT, FULL_REMAT, accumulation(8), accumulation(16))


@dataclasses.dataclass
class FitResult:
  overrides: list[str] | None     # what to paste; None: no setting tried fits
  plans: list[dry_run.StagePlan]  # the chain under those overrides (or as configured)
  tried: list[tuple[list[str], str]]  # each setting compiled and what came of it


def fits(plan: dry_run.StagePlan, budget_bytes: float) -> bool:
  return not plan.does_not_fit and plan.peak_bytes <= budget_bytes


def changed_overrides(config, overrides) -> list[str]:
  """The overrides that change something in `config` (a value it already has is not worth pasting)."""
  changed = []
  for item in overrides:
    probe = copy.deepcopy(config)
    before = probe.to_dict()
    apply_override(probe, item)
    if probe.to_dict() != before:
      changed.append(item)
  return changed


def with_overrides(config, overrides):
  adjusted = copy.deepcopy(config)
  for item in overrides:
    apply_override(adjusted, item)
  return adjusted


def _combined(kept: list[str], knob: tuple[str, ...]) -> list[str]:
  fields = {item.partition("=")[0]: item for item in kept}
  fields.update({item.partition("=")[0]: item for item in knob})
  return list(fields.values())


def _need(plans: list[dry_run.StagePlan]) -> float:
  """How much the stages that do not fit ask for: XLA's figure where it refused to compile."""
  return max((plan.needed_bytes or float("inf")) if plan.does_not_fit else plan.peak_bytes for plan in plans)


_REMAT_STRENGTH = {"none": 0, "dots_saveable": 1, "dots_with_no_batch_dims_saveable": 2, "nothing_saveable": 3,
                   "full": 3}


def weaker_than_configured(config, knob: tuple[str, ...]) -> bool:
  """A knob that would save less than what the config already does (partial remat where it has full,
  fewer microbatches than it has): not a step down the ladder."""
  for item in knob:
    key, _, value = item.partition("=")
    if key == "--config.llm.remat" and _REMAT_STRENGTH.get(value, 0) < _REMAT_STRENGTH.get(config.llm.remat, 0):
      return True
    if key == "--config.train.accumulation" and int(value) < int(config.train.accumulation):
      return True
  return False


def fit_chain(config, devices, budget_bytes: float, workdir: str | None = None, progress=print) -> FitResult:
  """Knob by knob, cheapest first, each kept only where it lowers what the stages that do not fit
  need, until every stage of `config` fits `budget_bytes`."""
  plans = dry_run.plan_chain(config, devices, workdir, progress=progress)
  too_big = {plan.stage for plan in plans if not fits(plan, budget_bytes)}
  tried: list[tuple[list[str], str]] = [([], _verdict(plans, budget_bytes))]
  if not too_big:
    return FitResult([], plans, tried)
  kept: list[str] = []
  need = _need([plan for plan in plans if plan.stage in too_big])
  for knob in KNOBS:
    if weaker_than_configured(config, knob):
      continue
    overrides = changed_overrides(config, _combined(kept, knob))
    if overrides == kept:
      continue  # the config has this already
    progress(f"--fit: trying {' '.join(overrides)}")
    try:
      partial = dry_run.plan_chain(with_overrides(config, overrides), devices, workdir, progress=lambda _: None,
                                   only=too_big)
    except (ValueError, RuntimeError) as error:  # e.g. a batch that does not split into the microbatches
      tried.append((overrides, f"not possible: {str(error).splitlines()[0][:160]}"))
      continue
    tried.append((overrides, _verdict(partial, budget_bytes)))
    if all(fits(plan, budget_bytes) for plan in partial):
      # the stages just compiled under these overrides are planned already: compile only the others
      rest = {stage.name for stage in config.stages} - too_big
      others = dry_run.plan_chain(with_overrides(config, overrides), devices, workdir, progress=progress,
                                  only=rest) if rest else []
      by_stage = {plan.stage: plan for plan in [*partial, *others]}
      whole = [by_stage[stage.name] for stage in config.stages]
      if all(fits(plan, budget_bytes) for plan in whole):
        return FitResult(overrides, whole, tried)
      too_big |= {plan.stage for plan in whole if not fits(plan, budget_bytes)}
      partial = [plan for plan in whole if plan.stage in too_big]
    if _need(partial) < need:
      kept, need = overrides, _need(partial)
    else:
      tried[-1] = (overrides, tried[-1][1] + " (no lower: dropped)")
  return FitResult(None, plans, tried)


def _verdict(plans: list[dry_run.StagePlan], budget_bytes: float) -> str:
  worst = [plan for plan in plans if not fits(plan, budget_bytes)]
  if not worst:
    peak = max(plan.peak_bytes for plan in plans)
    return f"fits (largest peak {peak / dry_run.GIB:.2f} GiB)"
  return "; ".join(f"{plan.stage}: " + (plan.does_not_fit or f"peak {plan.peak_bytes / dry_run.GIB:.2f} GiB")
                   for plan in worst)
