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
