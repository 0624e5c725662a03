"""``WorldsVecEnv``: the SB3 ``VecEnv`` plumbing shared by every VecEnv whose N "envs" are the N
worlds of one batched core (one Python object, no per-world env to address)."""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices


class WorldsVecEnv(VecEnv):
    """Attribute access, method calls and wrapper queries answered once for all worlds; no
    rendering (watch episodes with experiments/watch.py)."""

    render_mode = None

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = None if attr_name == "render_mode" else getattr(self, attr_name)
        return [value] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *args, indices: VecEnvIndices = None, **kwargs):
        return [getattr(self, method_name)(*args, **kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class, indices: VecEnvIndices = None) -> list[bool]:
        return [False] * len(self._get_indices(indices))

    def get_images(self):
        raise NotImplementedError("render episodes with experiments/watch.py")
