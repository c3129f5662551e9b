"""Cloud TPU slice names, the one table behind the launcher and the dry run.

Users type the names Google's console and `gcloud` use (`v4-8`, `v5litepod-16` or `v5e-16`, `v5p-64`,
`v6e-256`); libtpu's compiler wants its own (`v4:2x2x1` with megacore, `v5e:4x4`, `v5:2x4x4`,
`v6e:16x16`), and a TPU VM must be created with the software version of its generation. This module
turns one into the others. It imports nothing outside the standard library, so `launch/tpu_pod.sh`
runs it with any `python3` before anything is installed:

    python3 asl_motiongpt/parallel/tpu_types.py runtime-version v5p-64      # v2-alpha-tpuv5
    python3 asl_motiongpt/parallel/tpu_types.py accelerator-type v5e-16     # v5litepod-16
    python3 asl_motiongpt/parallel/tpu_types.py table                       # the Markdown table

A name may end in `xN` for N slices joined over the data-centre network (`v5e-16x2`: 32 chips).
"""
from __future__ import annotations

import dataclasses
import re
import sys


@dataclasses.dataclass(frozen=True)
class TpuGeneration:
  name: str                # what the docs call it: v4, v5e, v5p, v6e
  gcloud_prefix: str       # the accelerator type gcloud takes: <prefix>-<count>
  aliases: tuple           # other prefixes users type
  libtpu_prefix: str       # libtpu's topology names: <prefix>:<shape>
  runtime_version: str     # the TPU VM software version (cloud.google.com/tpu/docs/runtimes)
  cores_per_chip_in_name: int  # v4-8 and v5p-8 count TensorCores (2 per chip); v5e-8 and v6e-8 chips
  megacore: bool           # the two TensorCores of a chip act as one JAX device
  torus_dims: int          # 3D torus (v4, v5p) or 2D (v5e, v6e)
  hbm_gib_per_chip: float  # memory of one JAX device (a chip)


GENERATIONS = (
    TpuGeneration("v4", "v4", (), "v4", "tpu-ubuntu2204-base", 2, True, 3, 32.0),
    TpuGeneration("v5e", "v5litepod", ("v5e", "v5lite"), "v5e", "v2-alpha-tpuv5-lite", 1, False, 2, 16.0),
    TpuGeneration("v5p", "v5p", (), "v5", "v2-alpha-tpuv5", 2, True, 3, 95.0),
    TpuGeneration("v6e", "v6e", (), "v6e", "v2-alpha-tpuv6e", 1, False, 2, 32.0),
)
_BY_PREFIX = {prefix: generation for generation in GENERATIONS
              for prefix in (generation.gcloud_prefix, generation.name, *generation.aliases)}
_BY_LIBTPU_PREFIX = {generation.libtpu_prefix: generation for generation in GENERATIONS}


class UnknownTpuType(ValueError):
  pass


@dataclasses.dataclass(frozen=True)
class TpuSlice:
  generation: TpuGeneration
  chips: int               # per slice
  shape: tuple             # chips along each torus axis
  slices: int = 1

  @property
  def libtpu_name(self) -> str:
    return f"{self.generation.libtpu_prefix}:{'x'.join(str(size) for size in self.shape)}"

  @property
  def accelerator_type(self) -> str:
    """What `gcloud compute tpus tpu-vm create --accelerator-type` takes (one slice)."""
    return f"{self.generation.gcloud_prefix}-{self.chips * self.generation.cores_per_chip_in_name}"

  @property
  def chip_config_name(self) -> str:
    return "megacore" if self.generation.megacore else "default"

  @property
  def chips_per_host_bounds(self) -> tuple:
    """libtpu's default host (2x2x1 chips) cannot hold a slice of one or two chips."""
    return (min(self.chips, 2), 2 if self.chips >= 4 else 1, 1)

  @property
  def devices(self) -> int:
    return self.chips * self.slices

  @property
  def device_memory_gib(self) -> float:
    return self.generation.hbm_gib_per_chip


def _torus_shape(chips: int, dims: int) -> tuple | None:
  """The shape Cloud TPU gives a slice of `chips` chips: 2D slices as square as a power of two allows
  (8 -> 2x4, 32 -> 4x8), 3D ones from 2x2x1 by doubling the axes from the last (2x2x2, 2x2x4, 2x4x4,
  4x4x4, ...)."""
  if chips < 1 or chips & (chips - 1):
    return None
  if dims == 2:
    rows = 1 << ((chips.bit_length() - 1) // 2)
    return (rows, chips // rows)
  if chips < 4:
    return None
  shape, axis = [2, 2, 1 if chips == 4 else 2], 2
  while shape[0] * shape[1] * shape[2] < chips:
    shape[axis] *= 2
    axis = (axis - 1) % 3
  return tuple(shape)


def parse(name: str) -> TpuSlice:
  """A slice from a Cloud name (`v5p-64`, `v5litepod-16`, `v5e-16x2`) or a libtpu name (`v5:2x4x4`)."""
  text = name.strip().lower()
  libtpu = re.fullmatch(r"([a-z0-9]+):(\d+(?:x\d+)*)", text)
  if libtpu:
    generation = _BY_LIBTPU_PREFIX.get(libtpu.group(1))
    if generation is None:
      raise UnknownTpuType(f"TPU topology {name!r}: libtpu prefix {libtpu.group(1)!r} is not one of "
                           f"{sorted(_BY_LIBTPU_PREFIX)}")
    shape = tuple(int(size) for size in libtpu.group(2).split("x"))
    chips = 1
    for size in shape:
      chips *= size
    return TpuSlice(generation, chips, shape)
  cloud = re.fullmatch(r"([a-z0-9]+)-(\d+)(?:x(\d+))?", text)
  if not cloud or cloud.group(1) not in _BY_PREFIX:
    raise UnknownTpuType(f"TPU type {name!r} is not known; use one of: {known_names()} (or libtpu's "
                         f"names such as v5e:4x4, v5:2x4x4, v4:2x2x1)")
  generation = _BY_PREFIX[cloud.group(1)]
  count, slices = int(cloud.group(2)), int(cloud.group(3) or 1)
  chips, odd = divmod(count, generation.cores_per_chip_in_name)
  shape = None if odd else _torus_shape(chips, generation.torus_dims)
  if shape is None:
    raise UnknownTpuType(f"TPU type {name!r}: {generation.name} slices come in "
                         f"{'TensorCore' if generation.cores_per_chip_in_name > 1 else 'chip'} counts such as "
                         f"{', '.join(example_names(generation))}")
  return TpuSlice(generation, chips, shape, slices)


def example_names(generation: TpuGeneration) -> list[str]:
  smallest = 4 if generation.torus_dims == 3 else 1
  counts = [chips * generation.cores_per_chip_in_name for chips in (smallest, 8, 16, 64, 256)]
  return [f"{generation.gcloud_prefix}-{count}" for count in counts]


def known_names() -> str:
  return "; ".join(f"{generation.name}: {', '.join(example_names(generation))}" for generation in GENERATIONS)


def markdown_table() -> str:
  rows = ["| generation | accelerator type | libtpu topology | software version | devices (chips) | HBM per device |",
          "| --- | --- | --- | --- | --- | --- |"]
  for generation in GENERATIONS:
    for example in example_names(generation)[:3]:
      tpu = parse(example)
      rows.append(f"| {generation.name} | `{tpu.accelerator_type}` | `{tpu.libtpu_name}` | "
                  f"`{generation.runtime_version}` | {tpu.devices} | {generation.hbm_gib_per_chip:g} GiB |")
  return "\n".join(rows)


def main(argv: list[str]) -> int:
  commands = {"runtime-version": lambda tpu: tpu.generation.runtime_version,
              "accelerator-type": lambda tpu: tpu.accelerator_type,
              "libtpu-name": lambda tpu: tpu.libtpu_name,
              "slices": lambda tpu: str(tpu.slices),
              "devices": lambda tpu: str(tpu.devices)}
  if argv == ["table"]:
    print(markdown_table())
    return 0
  if len(argv) != 2 or argv[0] not in commands:
    print(f"usage: tpu_types.py {{{'|'.join(commands)}}} <TPU type> | table", file=sys.stderr)
    return 2
  try:
    print(commands[argv[0]](parse(argv[1])))
  except UnknownTpuType as error:
    print(error, file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
