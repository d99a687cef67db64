"""Lightning callbacks: evaluation and plots, health flags, checkpoints, progress bar."""
