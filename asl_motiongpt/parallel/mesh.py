"""The device mesh: axes ('data', 'fsdp', 'tensor'), built with AxisType.Auto.

`jax.make_mesh` defaults to Explicit axes in recent JAX; our models rely on sharding propagation
plus logical constraints, which is the Auto mode, so we always say so.

  mesh = make_mesh({"data": -1, "fsdp": 1, "tensor": 1})          # -1 takes the remaining devices
  mesh = make_mesh({"data": 1, "fsdp": -1, "tensor": 4}, dcn={"data": 2})   # 2 slices over DCN
"""
from __future__ import annotations

from collections.abc import Mapping

import jax
import numpy as np
from jax.experimental import mesh_utils
from jax.sharding import AxisType, Mesh

AXES = ("data", "fsdp", "tensor")


def resolve_shape(shape: Mapping[str, int], devices: int) -> tuple[int, ...]:
  """Sizes in AXES order; one -1 is filled so the product equals `devices`."""
  unknown = set(shape) - set(AXES)
  if unknown:
    raise ValueError(f"unknown mesh axes {sorted(unknown)}; the axes are {AXES}")
  sizes = [int(shape.get(a, 1)) for a in AXES]
  if sizes.count(-1) > 1:
    raise ValueError(f"at most one mesh axis may be -1, got {dict(zip(AXES, sizes))}")
  known = int(np.prod([s for s in sizes if s != -1]))
  if -1 in sizes:
    if devices % known:
      raise ValueError(f"{devices} devices do not divide into {dict(zip(AXES, sizes))}")
    sizes[sizes.index(-1)] = devices // known
  if int(np.prod(sizes)) != devices:
    raise ValueError(f"mesh {dict(zip(AXES, sizes))} needs {int(np.prod(sizes))} devices, have {devices}")
  return tuple(sizes)


def make_mesh(shape: Mapping[str, int], dcn: Mapping[str, int] | None = None, devices=None) -> Mesh:
  """A mesh over all (or the given) devices. `dcn` splits axes across slices (multi-slice TPU):
  the mesh is then ICI shape x DCN shape, with the DCN part outermost on each axis."""
  devices = list(devices if devices is not None else jax.devices())
  if not dcn:
    sizes = resolve_shape(shape, len(devices))
    return jax.make_mesh(sizes, AXES, axis_types=(AxisType.Auto,) * len(AXES), devices=devices)
  dcn_sizes = tuple(int(dcn.get(a, 1)) for a in AXES)
  slices = int(np.prod(dcn_sizes))
  ici_sizes = resolve_shape(shape, len(devices) // slices)
  grid = mesh_utils.create_hybrid_device_mesh(ici_sizes, dcn_sizes, devices=devices)
  return Mesh(grid, AXES, axis_types=(AxisType.Auto,) * len(AXES))


def describe(mesh: Mesh) -> str:
  return " x ".join(f"{name}={size}" for name, size in mesh.shape.items()) + f" ({mesh.devices.size} devices)"


def mesh_from_config(section, devices=None) -> Mesh:
  """The mesh of a (resolved) config's `mesh` section: data/fsdp/tensor within a slice, and `dcn`
  (axis -> number of slices along it) for multi-slice jobs; a dcn of all ones is one slice. Over
  `devices` (default: all; a planned topology for `train --dry-run`)."""
  shape = {a: int(section[a]) for a in AXES}
  dcn = {a: int(v) for a, v in dict(section.get("dcn") or {}).items()}
  if dcn and set(dcn.values()) != {1}:
    return make_mesh(shape, dcn, devices=devices)
  return make_mesh(shape, devices=devices)
