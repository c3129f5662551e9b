"""Shardings of parameters, optimizer state and batches, derived from logical axis names."""
from __future__ import annotations

import jax
import numpy as np
from flax import linen as nn
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from asl_motiongpt.parallel.rules import DEFAULT_RULES


def logical_to_shardings(logical_specs, mesh: Mesh, rules=DEFAULT_RULES):
  """A pytree of PartitionSpecs over logical names -> NamedShardings on `mesh`."""
  return nn.logical_to_mesh_sharding(logical_specs, mesh, rules)


def abstract_with_specs(init_fn, *args):
  """(abstract values, logical PartitionSpecs) of what a Flax init (boxed) returns, without
  computing it. Works through optax too: boxes survive `tx.init`, so moments get their param's specs."""
  boxed = jax.eval_shape(init_fn, *args)
  return nn.meta.unbox(boxed), nn.get_partition_spec(boxed)


def batch_sharding(mesh: Mesh, ndim: int) -> NamedSharding:
  """Leading (batch) axis over ('data', 'fsdp'); the rest replicated."""
  return NamedSharding(mesh, PartitionSpec(("data", "fsdp"), *([None] * (ndim - 1))))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def global_batch(batch: dict, mesh: Mesh) -> dict:
  """Host-local batches (this process' rows) -> global jax.Arrays sharded over the batch axes."""
  return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(batch_sharding(mesh, np.ndim(x)), np.asarray(x)),
      batch)


def bytes_per_device(tree) -> int:
  """Bytes one device holds of a tree of (sharded) arrays."""
  total = 0
  for leaf in jax.tree.leaves(tree):
    shard = leaf.sharding.shard_shape(leaf.shape) if hasattr(leaf, "sharding") else leaf.shape
    total += int(np.prod(shard)) * leaf.dtype.itemsize
  return total


def to_host(tree):
  """Numpy copies of a tree of (possibly process-spanning) arrays, whole on every process. One
  process: device_get; several: an all-gather (for small trees: a tokenizer's parameters, metrics)."""
  if jax.process_count() == 1:
    return jax.device_get(tree)
  from jax.experimental import multihost_utils
  return multihost_utils.process_allgather(tree, tiled=True)


def barrier(name: str) -> None:
  """Every process waits here until all have arrived (one process wrote what the others read next)."""
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(name)


def written_once(write, name: str) -> None:
  """`write()` on process 0 only (one copy of a file, however many processes run the job); every
  process waits until it is written, as the next step may read it."""
  from asl_motiongpt.parallel.runtime import is_main_process
  if is_main_process():
    write()
  barrier(name)


def agree(value: bool) -> bool:
  """Process 0's answer, on every process (a decision that must not differ between processes)."""
  if jax.process_count() == 1:
    return value
  from jax.experimental import multihost_utils
  return bool(multihost_utils.broadcast_one_to_all(np.asarray(value)))
