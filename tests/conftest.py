"""Suite-wide fixtures."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """The suite trains tiny MLPs: intra-op threads only add contention (10-50x slower on a busy
    2-core machine), and one thread is what the trainer's workers use."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
