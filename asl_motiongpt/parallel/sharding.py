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
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(batch_sharding(mesh, np.ndim(x)), np.asarray(x)),
                      batch)


def bytes_per_device(tree) -> int:
  """Bytes one device holds of a tree of (sharded) arrays."""
  total = 0
  for x in jax.tree.leaves(tree):
    shard = x.sharding.shard_shape(x.shape) if hasattr(x, "sharding") else x.shape
    total += int(np.prod(shard)) * x.dtype.itemsize
  return total
