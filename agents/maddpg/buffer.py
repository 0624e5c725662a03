"""``ReplayBuffer``: a ring buffer of transitions of both agents, one preallocated float32 tensor
(one row per transition, one column block per field: a sample is one gather)."""

from __future__ import annotations

import numpy as np
import torch


class ReplayBuffer:
    """Transitions of every agent: per agent ``obs``, ``act``, ``reward``, ``next_obs`` and
    ``next_act`` (the action a fixed agent took at ``next_obs``; unused for a learner, whose next
    action comes from its target actor). Field names are ``"<field>/<agent>"``.

    :param capacity: the number of transitions kept (the oldest are overwritten)
    :param obs_dims: each agent's observation size
    :param act_dims: each agent's action size (an int: the same for every agent)
    :param terminal: keep a ``terminated`` column (for worlds whose episodes can end early)
    """

    def __init__(self, capacity: int, obs_dims: dict[str, int], act_dims: int | dict[str, int],
                 terminal: bool = False):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1 (got {capacity})")
        self.capacity = int(capacity)
        widths = {}
        for agent, obs_dim in obs_dims.items():
            act_dim = act_dims if isinstance(act_dims, int) else act_dims[agent]
            widths.update({f"obs/{agent}": obs_dim, f"act/{agent}": act_dim, f"reward/{agent}": 1,
                           f"next_obs/{agent}": obs_dim, f"next_act/{agent}": act_dim})
        if terminal:
            widths["terminated"] = 1
        ends = np.cumsum(list(widths.values()))
        self.columns = {k: slice(int(e - w), int(e)) for (k, w), e in zip(widths.items(), ends)}
        self.storage = torch.empty(self.capacity, int(ends[-1]), dtype=torch.float32)
        self.pos = 0
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def add(self, rows: dict[str, np.ndarray]) -> None:
        """Append one row per world for every field (``rows[field]``: ``(N, width)`` or ``(N,)``)."""
        n = len(next(iter(rows.values())))
        if n > self.capacity:
            raise ValueError(f"{n} transitions do not fit a buffer of capacity {self.capacity}")
        block = np.empty((n, self.storage.shape[1]), dtype=np.float32)
        for key, cols in self.columns.items():
            block[:, cols] = np.asarray(rows[key]).reshape(n, cols.stop - cols.start)
        idx = (self.pos + torch.arange(n)) % self.capacity
        self.storage[idx] = torch.from_numpy(block)
        self.pos = (self.pos + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
        """``batch_size`` transitions drawn uniformly with replacement from ``generator``."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = torch.randint(0, self.size, (batch_size,), generator=generator)
        rows = self.storage.index_select(0, idx)
        return {key: rows[:, cols] for key, cols in self.columns.items()}

    def state_dict(self) -> dict:
        """The stored transitions (copies of the filled rows) and the write position."""
        return {"pos": self.pos, "size": self.size, "columns": list(self.columns),
                "storage": self.storage[:self.size].clone()}

    def load_state_dict(self, state: dict) -> None:
        size = int(state["size"])
        if size > self.capacity:
            raise ValueError(f"the saved buffer holds {size} transitions, more than capacity {self.capacity}")
        if list(state["columns"]) != list(self.columns):
            raise ValueError(f"the saved buffer's fields {state['columns']} differ from {list(self.columns)}")
        self.storage[:size] = state["storage"]
        self.pos, self.size = int(state["pos"]), size
