"""Logical axis names -> mesh axes: one table, as data (MaxText's mechanism).

Each parameter and key activation names its dimensions ('embed', 'mlp', 'vocab', ...); these rules
say which mesh axis shards each name. A name may have several rules: the first whose mesh axis is
still free for that array wins (so an activation [batch, length, embed] puts 'fsdp' on the batch
and leaves 'embed' replicated, while a weight [embed, mlp] puts 'fsdp' on 'embed').
"""
from __future__ import annotations

DEFAULT_RULES: tuple[tuple[str, str | tuple[str, ...] | None], ...] = (
    # activations
    ("batch", ("data", "fsdp")),
    ("length", None),
    # transformer weights: FSDP over the model dimension, tensor parallel over heads / MLP / vocab
    ("embed", "fsdp"),
    ("vocab", "tensor"),
    ("mlp", "tensor"),
    ("q_heads", "tensor"),
    ("kv_heads", "tensor"),
    ("heads", "tensor"),
    ("head_dim", None),
    ("norm", None),
    ("layers", None),
    ("motion_feature", None),
    # tokenizer convolutions: [taps, in, out]
    ("conv_width", None),
    ("conv_in", "fsdp"),
    ("conv_out", "tensor"),
    ("pose_features", None),
    ("conv_act", None),
    ("code", None),
)


def rules_from_config(entries) -> tuple:
  """Rules from a config (a list of [name, axis-or-list-or-None]), falling back to the default."""
  if not entries:
    return DEFAULT_RULES
  out = []
  for name, axes in entries:
    out.append((name, tuple(axes) if isinstance(axes, (list, tuple)) else axes))
  return tuple(out)
