"""Our red/blue physical-deception env (docs/design.md section 1): ``config`` (``DeceptionConfig``),
``core`` (the batched NumPy core), ``render`` (pygame), ``world`` (``DeceptionWorld``, the core behind
the environment seam), ``hooks`` (what the generic route adds to its PettingZoo env). The PettingZoo
env itself is ``envs.deception_v0``."""
