"""Minimal reproduction of the sharding miscompile the tokenizer works around (see gesture/vqvae.py).

  XLA_FLAGS=--xla_force_host_platform_device_count=8 JAX_PLATFORMS=cpu python tools/repro_spmd_slice_residual.py

A time-slice, a matmul and a residual connection, batch over ('data', 'fsdp'), weights over
('fsdp', 'tensor'): on a 2x2x2 mesh the weight gradient differs from one device (relative error
~0.75 with jax 0.10.2), on 4x1x2 it does not; pinning the activation's sharding fixes it.
"""
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

from asl_motiongpt.parallel import make_mesh

rng = np.random.default_rng(0)
inputs = jnp.asarray(rng.normal(size=(8, 16, 32)), jnp.float32)
weights = {k: jnp.asarray(rng.normal(size=(32, 32)) * 0.2, jnp.float32) for k in "ab"}


def pin(hidden):
  return jax.lax.with_sharding_constraint(hidden, P(("data", "fsdp"), None, None))


def plain(weights, inputs):
  hidden = inputs[:, :8] @ weights["a"]
  return jnp.sum((hidden + hidden @ weights["b"]) ** 2)


def pinned(weights, inputs):
  hidden = pin(inputs[:, :8] @ weights["a"])
  return jnp.sum((hidden + hidden @ weights["b"]) ** 2)


with jax.set_mesh(make_mesh({"data": 1}, devices=jax.devices()[:1])):
  reference = jax.device_get(jax.jit(jax.grad(plain))(weights, inputs))
print("jax", jax.__version__, jax.devices()[0].platform, jax.device_count(), "devices")
for shape in ({"data": 2, "fsdp": 2, "tensor": 2}, {"fsdp": 4, "tensor": 2}):
  mesh = make_mesh(shape)
  sharded_weights = {k: jax.device_put(v, NamedSharding(mesh, P("fsdp", "tensor"))) for k, v in weights.items()}
  xs = jax.device_put(inputs, NamedSharding(mesh, P(("data", "fsdp"))))
  for name, fn in (("plain", plain), ("pinned", pinned)):
    with jax.set_mesh(mesh):
      grads = jax.device_get(jax.jit(jax.grad(fn))(sharded_weights, xs))
    err = max(float(np.abs(grads[k] - reference[k]).max() / np.abs(reference[k]).max()) for k in grads)
    print(f"{shape} {name:7s} max relative gradient error {err:.1e}")
