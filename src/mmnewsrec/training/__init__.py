"""Training: the loop (Accelerate), optimiser set-up, checkpoints and metric logs."""
