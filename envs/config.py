"""Where ``DeceptionConfig`` lived before ``envs/deception/``: files pickled then (an SB3 ``.zip``'s
``env_config``) name this module, so SB3's own loader still finds the class here. New code imports
``envs.deception.config``."""

from envs.deception.config import REWARD_MODES, ConfigError, DeceptionConfig, is_number, make_config

__all__ = ["REWARD_MODES", "ConfigError", "DeceptionConfig", "is_number", "make_config"]
