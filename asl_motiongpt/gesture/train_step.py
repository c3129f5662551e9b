"""The gesture tokenizer's training step (the network by the optimizer, the codebooks by their EMA
rule) and its train state. Uncompiled: train/step.py compiles it like every stage's step; kept free
of data-pipeline imports so benchmarks can run it anywhere."""
import jax
import jax.numpy as jnp
import optax

from asl_motiongpt.gesture.tokenizer import GestureTokenizer


def make_step(tokenizer: GestureTokenizer, tx):
  """step(state, batch[, hyper]) -> (state, metrics); state = {step, params, opt_state, vq, rng}.
  With `hyper`, tx is a train/optimizer.Optimizer built from those numbers (see llm_step.make_step)."""
  def step(ts, batch, hyper=None):
    rng, step_rng = jax.random.split(ts["rng"])
    grad_fn = jax.value_and_grad(tokenizer.loss, has_aux=True)
    (_, (metrics, vq_state)), grads = grad_fn(ts["params"], ts["vq"], batch["pose"], batch["mask"],
                                              batch["time_mask"], step_rng)
    updates, opt_state = (tx if hyper is None else tx.build(hyper)).update(grads, ts["opt_state"], ts["params"])
    params = optax.apply_updates(ts["params"], updates)
    metrics["grad_norm"] = optax.tree.norm(grads)
    return {"step": ts["step"] + 1, "params": params, "opt_state": opt_state, "vq": vq_state, "rng": rng}, metrics
  return step


def boxed_state(tokenizer: GestureTokenizer, tx, frames: int, seed: int, statistics: dict | None = None):
  """init_boxed_state() for train/step.py: parameters (and their moments) carry logical axes;
  codebooks, feature statistics, step and rng are replicated. The codebooks start empty (filled
  from the first batch); the statistics (`features.statistics_from_prepared`, identity if None)
  stay as given for the tokenizer's life."""
  def init():
    parts = [jnp.zeros((1, frames, f)) for f in tokenizer.spec.part_features]
    params = tokenizer.net.init(jax.random.PRNGKey(seed), parts)["params"]
    vq = tokenizer.init_state(statistics)
    return {"step": jnp.zeros((), jnp.int32), "params": params, "opt_state": tx.init(params), "vq": vq,
            "rng": jax.random.PRNGKey(seed + 1)}
  return init
