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


@pytest.fixture(autouse=True, scope="session")
def _sb3_log_dir(tmp_path_factory):
    """SB3 makes an empty ``SB3-<time>`` folder in the system temp dir for every ``learn`` of a
    model without a logger (its ``configure(None)``); ``SB3_LOGDIR`` keeps them in pytest's own."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SB3_LOGDIR", str(tmp_path_factory.mktemp("sb3_logs")))
    yield
    mp.undo()
