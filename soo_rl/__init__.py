"""soo-rl core: configuration, SOO pairing and loss, metrics, training orchestration."""
