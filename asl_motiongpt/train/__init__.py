"""Training: stages (the tokenizer stage today), checkpoints, preemption, logging."""
