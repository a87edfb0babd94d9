"""The run lifecycle: config checks and defaults, run folders, checkpoints, records, files, SLURM."""
