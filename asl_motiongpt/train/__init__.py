"""Training: the chain of stages (tokenizer, then LLM stages), the one step compiler, the one
optimizer builder, the shared loop with checkpoints, preemption and logging."""
