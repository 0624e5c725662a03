"""Analysing finished runs: the summary, statistics, heatmaps, the classifier, cross-play, held-out
variants, the mechanism study, the report and curve comparisons."""
