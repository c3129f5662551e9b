"""`asl-motiongpt train --dry-run`: every stage of a chain built and compiled ahead of time for a device
topology, reading no data and no weights and allocating nothing; prints what each stage would take.

    asl-motiongpt train --config configs/strategies/staged.py --dry-run --topology cpu:8 \\
        --config.llm.hf_dir=llama3-8b-config/ --config.mesh.fsdp=-1 --config.mesh.data=1

A topology is `devices` (this machine's), `cpu:N` (N CPU devices standing in for accelerators) or
`tpu:<TPU type>`: the names Cloud TPU uses (`tpu:v5p-64`, `tpu:v5e-16`, `tpu:v6e-8`, `tpu:v4-8`,
`tpu:v5e-16x2` for two slices) or libtpu's own (`tpu:v5e:4x4`), one table for both
(`parallel/tpu_types.py`). TPU plans need libtpu (`pip install -e '.[tpu]'`); libtpu's compiler
plans for the slice on this machine's CPU, nothing runs, and every kernel choice follows the planned
devices (`parallel/target.py`), not this machine. The LLM's
`hf_dir` needs only `config.json` (the tokenizer files when present; a stand-in vocabulary of the
checkpoint's size when not). A tiny chain's word tokenizer is trained on its data, so without a
workdir that has one a stand-in of `STAND_IN_WORDS` words is used.

Per stage: parameters (trainable), per-device bytes of the compiled step (arguments = state + batch,
outputs, temporaries; peak ~ arguments + temporaries, the outputs reuse the donated state), units
per step, and FLOPs: for LLM stages the model FLOPs per step and device from the config (the MaxText
accounting used for MFU: the same meaning on every topology); XLA's count of one device's compiled
program beside it on CPU and GPU only (it counts a loop body such as `scan_layers`' once, and on TPU
the collective-matmul loops too, so it falls as 1/devices there). A stage that does not fit the
device memory (XLA refuses to compile it) is a row that says so with XLA's figures; the run goes on.
"""
from __future__ import annotations

import dataclasses
import os
import re
import tempfile

import jax
import numpy as np

STAND_IN_WORDS = 2000
GIB = 1 << 30


@dataclasses.dataclass
class StagePlan:
  stage: str
  kind: str
  mesh: str
  params: int
  trainable: int
  state_bytes: int            # per device
  argument_bytes: int         # per device, from the compiled step
  output_bytes: int
  temp_bytes: int
  units_per_step: int
  unit: str                   # tokens or frames
  xla_flops: float | None     # per step and device (XLA counts a scanned layer body once)
  model_flops: float | None   # per step, the LLM (6N + attention per token), all devices
  devices: int = 1
  does_not_fit: str | None = None  # XLA's out-of-memory message, when it refused to compile
  needed_bytes: float | None = None  # what XLA said the refused program needs

  @property
  def peak_bytes(self) -> int:
    return self.argument_bytes + self.temp_bytes


def tpu_slice(topology: str):
  """The TPU slice of `tpu:<name>` (parallel/tpu_types.py), None for other topologies."""
  from asl_motiongpt.parallel import tpu_types
  platform, _, name = topology.partition(":")
  return tpu_types.parse(name) if platform == "tpu" else None


def _on_a_tpu_vm() -> bool:
  return any(os.path.exists(path) for path in ("/dev/accel0", "/dev/vfio/0"))


def use_topology(topology: str) -> None:
  """Before JAX starts its backend: `cpu:N` makes N CPU devices. For `tpu:` away from a TPU VM,
  libtpu is told what it would otherwise ask the TPU metadata server (and warn about on every start),
  and several dry runs may load it at once (by default its lock file lets only one process in)."""
  platform, _, count = topology.partition(":")
  if platform == "cpu":
    jax.config.update("jax_platforms", "cpu")
    jax.config.update("jax_num_cpu_devices", int(count or 8))
  if platform == "tpu":
    planned = tpu_slice(topology)
    os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
    if not _on_a_tpu_vm():
      os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")
      os.environ.setdefault("TPU_ACCELERATOR_TYPE", planned.accelerator_type)
      os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")
      os.environ.setdefault("TPU_WORKER_ID", "0")


def topology_devices(topology: str) -> list:
  platform, _, name = topology.partition(":")
  if platform == "tpu":
    planned = tpu_slice(topology)
    import importlib.util
    if importlib.util.find_spec("libtpu") is None:
      raise RuntimeError(f"--topology {topology}: TPU plans need libtpu, which is not installed here: "
                         "pip install -e '.[tpu]' (the jax/libtpu pair the project was tested with)")
    from jax.experimental import topologies
    try:
      description = topologies.get_topology_desc(platform="tpu", topology_name=planned.libtpu_name,
                                                 chip_config_name=planned.chip_config_name,
                                                 chips_per_host_bounds=planned.chips_per_host_bounds,
                                                 num_slices=planned.slices)
    except Exception as error:
      raise RuntimeError(f"--topology {topology}: libtpu could not plan {planned.libtpu_name}: {error}") from error
    return list(description.devices)
  if platform not in ("cpu", "devices"):
    raise ValueError(f"--topology {topology!r}: use devices, cpu:N or tpu:<TPU type> (e.g. tpu:v5p-64, tpu:v5e:4x4)")
  devices = jax.devices()
  if platform == "cpu" and len(devices) != int(name or 8):
    raise ValueError(f"--topology {topology}: JAX started with {len(devices)} devices already")
  return devices


def _hf_planning_folder(hf_dir: str, local: str) -> str:
  """config.json and the tokenizer files of an HF folder (local or a bucket) copied into `local`,
  without the weights."""
  from asl_motiongpt import storage
  from asl_motiongpt.llm.checkpoint import TOKENIZER_PREFIXES
  for file in storage.path(hf_dir).iterdir():
    if file.name == "config.json" or file.name.startswith(TOKENIZER_PREFIXES):
      with open(os.path.join(local, file.name), "wb") as out:
        out.write(file.read_bytes())
  if not os.path.exists(os.path.join(local, "config.json")):
    raise FileNotFoundError(f"llm.hf_dir={hf_dir!r}: no config.json")
  return local


def _stand_in_tokenizer(words: int):
  from asl_motiongpt.data.text_tokenizer import train_word_tokenizer
  return train_word_tokenizer(f"w{i}" for i in range(words))


def planning_artifacts(config, workdir: str | None, scratch: str):
  """(Artifacts for assemble(), where the text tokenizer came from): abstract where it can be, read
  from nothing heavier than config.json and tokenizer files (copied into `scratch`)."""
  from asl_motiongpt import chain_config, storage
  from asl_motiongpt.llm.config import read_hf_config
  from asl_motiongpt.model.artifacts import text_tokenizer_dir, tokenizer_spec
  from asl_motiongpt.model.assembly import Artifacts
  from asl_motiongpt.gesture import GestureTokenizer
  from asl_motiongpt.data.text_tokenizer import load_word_tokenizer
  from transformers import AutoTokenizer
  base = None
  if config.llm.hf_dir:
    folder = _hf_planning_folder(config.llm.hf_dir, scratch)
    base = read_hf_config(folder)
    if any(n.startswith("tokenizer") for n in os.listdir(folder)):
      text, source = AutoTokenizer.from_pretrained(folder), f"{config.llm.hf_dir} (its tokenizer)"
    else:
      text, source = _stand_in_tokenizer(base.vocab_size - 4), f"a stand-in of {base.vocab_size} tokens (config.json)"
  elif workdir and storage.exists(storage.join(text_tokenizer_dir(workdir), "tokenizer.json")):
    text = load_word_tokenizer(text_tokenizer_dir(workdir))
    source = f"{text_tokenizer_dir(workdir)}"
  else:
    text, source = _stand_in_tokenizer(STAND_IN_WORDS), f"a stand-in word tokenizer of {STAND_IN_WORDS} words"
  stage = chain_config.tokenizer_stage(config)
  gesture = GestureTokenizer(tokenizer_spec(stage))
  codebook = np.zeros((gesture.spec.codes_per_step, stage.model.codebook_size, stage.model.code_dim), np.float32)
  return Artifacts(text_tokenizer=text, gesture=gesture, gesture_params=None, gesture_state={"codebook": codebook},
                   base_llm=base), source


def _abstract_batch(example: dict, batch_size: int, mesh):
  """The global batch as ShapeDtypeStructs with the step's batch shardings."""
  from asl_motiongpt.parallel import sharding as shd
  return {k: jax.ShapeDtypeStruct((batch_size,) + v.shape[1:], v.dtype, sharding=shd.batch_sharding(mesh, v.ndim))
          for k, v in example.items()}


def _flops(compiled) -> float | None:
  cost = compiled.cost_analysis()
  if isinstance(cost, (list, tuple)):  # older JAX: one dict per program
    cost = cost[0] if cost else None
  value = (cost or {}).get("flops")
  return float(value) if value is not None and value >= 0 else None


def plan_stage(kind, devices) -> StagePlan:
  """The stage kind's own program (train/stage_driver.py), compiled for the planned devices, not run."""
  from asl_motiongpt.parallel import describe
  from asl_motiongpt.parallel import sharding as shd
  from asl_motiongpt.train import stage_driver
  stage = kind.stage
  compiled = stage_driver.compile_program(kind.program(devices))
  program, abstract = compiled.program, compiled.abstract_state
  batch = _abstract_batch(program.example, stage.batch_size, program.mesh)
  shapes = jax.tree.leaves(abstract["params"])
  trainable = jax.tree.leaves(program.trainable) if program.trainable is not None else [True] * len(shapes)
  sizes = [(int(np.prod(p.shape)), bool(t)) for p, t in zip(shapes, trainable)]
  plan = StagePlan(stage=stage.name, kind=stage.kind, mesh=describe(program.mesh), params=sum(n for n, _ in sizes),
                   trainable=sum(n for n, t in sizes if t), state_bytes=shd.bytes_per_device(abstract),
                   argument_bytes=0, output_bytes=0, temp_bytes=0, units_per_step=program.units_per_step,
                   unit=program.unit, xla_flops=None, model_flops=program.model_flops, devices=len(devices))
  try:
    executable = compiled.step.lower(abstract, batch).compile()
  except Exception as error:  # XLA refuses a program that cannot fit the device's memory
    if not is_out_of_memory(error):
      raise
    return dataclasses.replace(plan, does_not_fit=out_of_memory_figures(error), needed_bytes=needed_bytes(error))
  memory = executable.memory_analysis()
  return dataclasses.replace(plan, argument_bytes=int(memory.argument_size_in_bytes),
                             output_bytes=int(memory.output_size_in_bytes), temp_bytes=int(memory.temp_size_in_bytes),
                             xla_flops=_flops(executable) if devices[0].platform != "tpu" else None)


def is_out_of_memory(error: Exception) -> bool:
  text = str(error)
  return "RESOURCE_EXHAUSTED" in text or "Ran out of memory" in text


_SIZE = r"(\d+(?:\.\d+)?[KMGT])"
# The forms XLA:TPU words its refusal in: "... temporaries (57.30G) exceeds available HBM (15.75G)",
# "Used 49.34G of 32.00G hbm", "Requires 3.84T, has 90.96G available".
_OUT_OF_MEMORY = (re.compile(_SIZE + r"\)? exceeds[^\d]*" + _SIZE), re.compile(r"Used " + _SIZE + " of " + _SIZE),
                  re.compile(r"Requires " + _SIZE + ", has " + _SIZE))


def needed_bytes(error: Exception) -> float | None:
  """The size XLA's refusal says the program needs, in bytes."""
  for pattern in _OUT_OF_MEMORY:
    figures = pattern.search(str(error))
    if figures:
      number, unit = float(figures.group(1)[:-1]), figures.group(1)[-1]
      return number * 1024 ** "KMGT".index(unit) * 1024
  return None


def out_of_memory_figures(error: Exception) -> str:
  """XLA's own figures from its out-of-memory refusal ("needs 57.30G, 15.75G available"), else its
  first line."""
  text = str(error)
  for pattern in _OUT_OF_MEMORY:
    figures = pattern.search(text)
    if figures:
      return f"needs {figures.group(1)}, {figures.group(2)} available (XLA)"
  return text.strip().splitlines()[0][:200]


def planning_kind(config, stage, system):
  """The stage kind of `stage` built for planning (no workdir: no data or weights are read)."""
  from asl_motiongpt.train.evaluator_stage import EvaluatorStage
  from asl_motiongpt.train.llm_stage import LlmStage
  from asl_motiongpt.train.tokenizer_stage import TokenizerStage
  if stage.kind == "tokenizer":
    return TokenizerStage(config, stage)
  if stage.kind == "evaluator":
    return EvaluatorStage(config, stage)
  return LlmStage(config, stage, system=system)


def plan_chain(config, devices, workdir: str | None = None, progress=print, only=None) -> list[StagePlan]:
  """Every stage (or those named in `only`) compiled for `devices`; kernels chosen for their
  platform; nothing left behind."""
  from asl_motiongpt import chain_config
  from asl_motiongpt.model.assembly import assemble
  from asl_motiongpt.parallel import target
  chain_config.validate(config)
  system, plans = None, []
  platform = devices[0].platform
  with tempfile.TemporaryDirectory(prefix="asl-dry-run-") as scratch, target.compiling_for(platform):
    for stage in config.stages:
      if only is not None and stage.name not in only:
        continue
      progress(f"[{stage.name}] compiling for {len(devices)} {platform} devices ...")
      if stage.kind == "llm" and system is None:
        artifacts, source = planning_artifacts(config, workdir, scratch)
        progress(f"text tokenizer: {source}")
        system = assemble(config, artifacts)
      plans.append(plan_stage(planning_kind(config, stage, system), devices))
      if plans[-1].does_not_fit:
        progress(f"[{stage.name}] does not fit: {plans[-1].does_not_fit}")
  return plans


def _count(number: float) -> str:
  for unit, size in (("P", 1e15), ("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
    if number >= size:
      return f"{number / size:.2f}{unit}"
  return f"{number:.0f}"


def _bytes(count: int) -> str:
  return f"{count / GIB:.2f} GiB" if count >= GIB // 10 else f"{count / (1 << 20):.1f} MiB"


def table(plans: list[StagePlan], device_memory_gib: float | None = None) -> str:
  """A Markdown table, one row per stage; with the device's memory, whether each stage fits."""
  head = ["stage", "mesh", "parameters (trainable)", "per step", "state/device", "arguments", "temporaries",
          "peak/device", "model FLOPs/step/device", "XLA FLOPs/step/device"]
  fits_column = device_memory_gib or any(plan.does_not_fit for plan in plans)
  if fits_column:
    head.append(f"fits {device_memory_gib:g} GiB" if device_memory_gib else "fits")
  rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for plan in plans:
    model_flops = _count(plan.model_flops / plan.devices) if plan.model_flops else ""
    if plan.does_not_fit:
      cells = [plan.stage, plan.mesh, f"{_count(plan.params)} ({_count(plan.trainable)})",
               f"{plan.units_per_step:,} {plan.unit}", _bytes(plan.state_bytes), "", "", "", model_flops, "",
               f"**does not fit**: {plan.does_not_fit}"]
      rows.append("| " + " | ".join(cells) + " |")
      continue
    cells = [plan.stage, plan.mesh, f"{_count(plan.params)} ({_count(plan.trainable)})",
             f"{plan.units_per_step:,} {plan.unit}", _bytes(plan.state_bytes), _bytes(plan.argument_bytes),
             _bytes(plan.temp_bytes), _bytes(plan.peak_bytes), model_flops,
             _count(plan.xla_flops) if plan.xla_flops else "n/a"]
    if fits_column:
      cells.append("yes" if not device_memory_gib or plan.peak_bytes <= device_memory_gib * GIB else "**no**")
    rows.append("| " + " | ".join(cells) + " |")
  return "\n".join(rows)
