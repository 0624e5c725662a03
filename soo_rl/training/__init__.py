"""Training one (condition, seed) job: its files, its learners and the loop with evaluations,
checkpoints and resume."""
