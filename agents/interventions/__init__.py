"""The alternatives to SOO that a learner can add to its update (docs/design.md section 3, "The
interventions"): ``reveal``, an information regulariser on the agent's own private goal, and
``detector``, a frozen linear deception probe on the agent's hidden activations. The reward-level
ones (``prosocial``, ``honest``) are reward modes of the worlds (``envs``)."""
