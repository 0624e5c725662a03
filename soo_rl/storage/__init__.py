"""A run directory on disk: atomic checkpoint and JSON writes, the one-writer lock, reading a run."""
