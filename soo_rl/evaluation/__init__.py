"""Measuring an agent: the episodes and metrics, the neural SOO value, rendered episodes."""
