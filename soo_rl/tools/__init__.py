"""Tools around the experiment: the speed benchmark and the training profiler."""
