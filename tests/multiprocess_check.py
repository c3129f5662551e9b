"""One process with 8 devices, or one of 2 processes with 4 devices each (jax.distributed on
localhost, ASL_* variables): three data+FSDP training steps of a tiny LLM; process 0 writes losses."""
import json
import sys

from asl_motiongpt.parallel import init_runtime

init_runtime(timeout_s=120)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from asl_motiongpt.llm import LlmConfig, Transformer  # noqa: E402
from asl_motiongpt.parallel import make_mesh  # noqa: E402
from asl_motiongpt.train import llm_step, step as step_compiler  # noqa: E402

config = LlmConfig("qwen3", vocab_size=128, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4,
                   num_kv_heads=2, head_dim=8, qk_norm=True)
mesh = make_mesh({"data": 2, "fsdp": 4})
model = Transformer(config)
tx = optax.adamw(1e-3)
init = llm_step.boxed_state(lambda: model.init(jax.random.PRNGKey(0), jnp.zeros((1, 16), jnp.int32))["params"], tx)
_, shardings = step_compiler.abstract_state(init, mesh)
state = step_compiler.init_state(init, shardings)
rng = np.random.default_rng(0)
ids = rng.integers(0, 128, (16, 16)).astype(np.int32)
target = np.ones((16, 16), bool)
# Each process feeds its own rows of the global batch.
rows = slice(jax.process_index() * 16 // jax.process_count(), (jax.process_index() + 1) * 16 // jax.process_count())
local = {"input_ids": ids[rows], "target_mask": target[rows]}
step = step_compiler.compile_step(llm_step.make_step(lambda p, b: model.apply({"params": p}, b["input_ids"]), tx),
                                  mesh, shardings, local)
losses = []
for _ in range(3):  # the process-local numpy rows, as the LLM stage's pipeline yields them
  state, metrics = step(state, local)
  losses.append(float(metrics["loss"]))
if jax.process_index() == 0:
  with open(sys.argv[1], "w") as f:
    json.dump({"losses": losses, "processes": jax.process_count(), "devices": jax.device_count()}, f)
