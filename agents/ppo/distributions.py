"""Training without ``torch.distributions``' argument checks: ``unchecked_distributions``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch.distributions import Distribution


@contextmanager
def unchecked_distributions() -> Iterator[None]:
    """Inside the block, new ``torch.distributions`` objects skip their argument and sample checks
    (torch's default is to run them). On our 64x64 policies the checks take about a tenth of a PPO
    update; they only raise (no number and no random draw changes), and a non-finite parameter,
    observation or loss is still caught by the experiment's own checks. The previous default is
    restored on exit."""
    before = Distribution._validate_args
    Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        Distribution.set_default_validate_args(before)
