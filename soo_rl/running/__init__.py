"""Running an experiment: the main job, the backends that run its jobs, signals, reused baselines
and the lambda sweep."""
