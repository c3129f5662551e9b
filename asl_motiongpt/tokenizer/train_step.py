"""One jitted, donated training step of the gesture tokenizer (the network by AdamW, the codebooks
by their EMA rule). Kept free of data-pipeline imports so benchmarks can run it anywhere."""
import jax
import optax

from asl_motiongpt.tokenizer.model import GestureTokenizer


def make_train_step(tokenizer: GestureTokenizer, tx):
  def step(ts, batch):
    rng, step_rng = jax.random.split(ts["rng"])
    grad_fn = jax.value_and_grad(tokenizer.loss, has_aux=True)
    (_, (metrics, vq_state)), grads = grad_fn(ts["params"], ts["vq"], batch["pose"], batch["mask"],
                                              batch["time_mask"], step_rng)
    updates, opt_state = tx.update(grads, ts["opt_state"], ts["params"])
    params = optax.apply_updates(ts["params"], updates)
    metrics["grad_norm"] = optax.tree.norm(grads)
    return {"step": ts["step"] + 1, "params": params, "opt_state": opt_state, "vq": vq_state, "rng": rng}, metrics
  return jax.jit(step, donate_argnums=0)


def state_shardings(tokenizer: GestureTokenizer, tx, mesh, frames: int, rules):
  """NamedShardings of the tokenizer's train state: parameters and their Adam moments by their
  logical axes; codebooks, step and rng replicated."""
  from asl_motiongpt.parallel import sharding as shd
  import jax.numpy as jnp

  def init_boxed():
    parts = [jnp.zeros((1, frames, f)) for f in tokenizer.spec.part_features]
    return tokenizer.net.init(jax.random.PRNGKey(0), parts)["params"]

  _, specs = shd.abstract_with_specs(init_boxed)
  _, opt_specs = shd.abstract_with_specs(lambda: tx.init(init_boxed()))
  rep = shd.replicated(mesh)
  _, vq = tokenizer.init(jax.random.PRNGKey(0), frames)
  return {"step": rep, "params": shd.logical_to_shardings(specs, mesh, rules),
          "opt_state": shd.logical_to_shardings(opt_specs, mesh, rules), "vq": jax.tree.map(lambda _: rep, vq),
          "rng": rep}


def make_sharded_train_step(tokenizer: GestureTokenizer, tx, mesh, shardings, rules):
  """The step jitted with explicit in/out shardings (batch over ('data', 'fsdp')), state donated."""
  from flax import linen as nn
  from asl_motiongpt.parallel import sharding as shd
  step = make_train_step(tokenizer, tx).__wrapped__
  batch_sh = {"pose": shd.batch_sharding(mesh, 4), "mask": shd.batch_sharding(mesh, 3),
              "time_mask": shd.batch_sharding(mesh, 2)}
  jitted = jax.jit(step, in_shardings=(shardings, batch_sh), out_shardings=(shardings, shd.replicated(mesh)),
                   donate_argnums=0)

  def run(ts, local_batch):
    with jax.set_mesh(mesh), nn.logical_axis_rules(rules):
      return jitted(ts, shd.global_batch(local_batch, mesh))
  return run
