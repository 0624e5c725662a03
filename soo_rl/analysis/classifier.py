"""The neural-SOO deception classifier on independently trained agents (the original's version:
docs/design.md section 7): does an agent's neural SOO value tell deceptive from honest agents?
Entry point: ``classify_run(run, positive, negative, episodes, n_eval_seeds)``; ``format_curve``
prints its result. experiments/classify.py and the report (soo_rl.analysis.report) call it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from agents.ppo.sb3_policy import SB3Policy
from soo_rl.evaluation.evaluate import make_red, soo_value_eval
from soo_rl.evaluation.metrics import mean_ci95, run_episodes
from soo_rl.storage.run_dir import RunError, RunInfo
from soo_rl.evaluation.metrics import auroc

DEFAULT_EPISODES = (1, 2, 5, 10, 20, 50, 100)
EVAL_SEED = 50_000  # seed of the classifier's evaluation episodes (see agent_soo_values)


def agent_soo_values(model, cfg, red: str, episodes: list[int], n_eval_seeds: int,
                     pairing: str) -> np.ndarray:
    """``values[i, j]``: the agent's SOO value on the first ``episodes[j]`` episodes of evaluation
    seed ``i``.

    All evaluation seeds are played in one batched call (``n_eval_seeds * max(episodes)`` worlds from
    the seed ``EVAL_SEED``): evaluation seed ``i`` owns the disjoint block of worlds
    ``[i * E_max, (i + 1) * E_max)``, so its episodes are fresh, independent of the other blocks', and
    the same for every agent. The pairing's random draws use the seed ``EVAL_SEED + i``."""
    e_max = max(episodes)
    batch = run_episodes(SB3Policy(model), make_red(red, cfg), cfg, e_max * n_eval_seeds, EVAL_SEED)
    values = np.empty((n_eval_seeds, len(episodes)))
    for i in range(n_eval_seeds):
        block = batch.blue_obs[:, i * e_max:(i + 1) * e_max]
        for j, e in enumerate(episodes):
            obs = block[:, :e].reshape(-1, block.shape[-1])
            values[i, j] = soo_value_eval(model, obs, cfg, pairing, EVAL_SEED + i)
    return values


def world_soo_values(run: RunInfo, cond: str, seed: int, red: str | None, episodes: list[int],
                     n_eval_seeds: int, pairing: str) -> np.ndarray:
    """``agent_soo_values`` of the first good agent of a job on another env than deception_v0:
    every agent of the job (adversaries: ``red`` if it is ``module:factory``) plays the same
    fixed-seed blocks of episodes; the value on that agent's own observations, ``pairing`` built
    from the world's layout."""
    import torch

    from agents.soo.losses import soo_value
    from agents.soo.pairing import make_pairing
    from soo_rl.evaluation.world_eval import job_policies, play_world, primary_agent

    spec, e_max = run.world_spec(cond), max(episodes)
    world = spec.make(e_max * n_eval_seeds, EVAL_SEED)
    policies, _ = job_policies(spec, run.job_dir(cond, seed), red=red if red and ":" in red else None)
    agent = primary_agent(spec)
    _, seen = play_world(world, policies, EVAL_SEED)
    played = policies[agent]  # a MADDPG actor's MLP, or a joint PPO job's SB3 policy
    net = played.actor.net if hasattr(played, "actor") else played.model.policy
    pairs = make_pairing(pairing, world, agent=agent)
    values = np.empty((n_eval_seeds, len(episodes)))
    for i in range(n_eval_seeds):
        block = seen[agent][:, i * e_max:(i + 1) * e_max]
        for j, e in enumerate(episodes):
            obs = torch.as_tensor(block[:, :e].reshape(-1, block.shape[-1]))
            values[i, j] = soo_value(net, obs, pairs, torch.Generator().manual_seed(EVAL_SEED + i))
    return values


def classify_run(run: RunInfo, positive: str = "deceptive", negative: str = "honest",
                 episodes: tuple[int, ...] | list[int] = DEFAULT_EPISODES, n_eval_seeds: int = 10,
                 red: str | None = None, progress=None) -> dict[str, Any]:
    """Classifier accuracy and AUROC vs the number of evaluation episodes.

    Each agent (condition/seed_k checkpoint) gets a score: its mean neural SOO value
    (``soo_rl.evaluation.evaluate.soo_value_eval``: log MSE of the actor's hidden activations between "red
    hidden" and "red injected inside the radius", over the self-steps of its own episodes; lower = more
    self-other overlap). The claim under test is that deceptive agents have a higher value than honest
    ones.

    - Pairs: for every seed ``k`` present in both conditions, ``negative/seed_k`` and
      ``positive/seed_k`` are two independently trained agents (from-scratch conditions share nothing
      but the seed number; fine-tune conditions share the deceptive starting checkpoint of seed ``k``).
      A pair is classified correctly when the negative (e.g. honest) agent's value is lower (a tie
      counts 1/2).
    - AUROC over all agents of both conditions: positive class = ``positive``, score = SOO value.

    Both are computed per *evaluation seed* (a fresh, disjoint block of episodes for each evaluation
    seed, the same episodes for every agent: ``agent_soo_values``) and for each number of episodes
    ``E``: the score uses the observations of the first ``E`` episodes of the evaluation seed's block
    (so the curves over ``E`` are nested, not independent). Reported: mean and 95% CI over evaluation
    seeds. The spread over evaluation seeds is measurement noise only; with few trained seeds the AUROC
    takes few distinct values.

    Raises ``RunError`` if a condition has no checkpoint or no seed is shared by both."""
    for cond in (positive, negative):
        if not run.seeds(cond):
            raise RunError(f"no checkpoints of condition '{cond}' in {run.path} "
                           f"(has: {', '.join(run.conditions) or 'none'})")
    if positive == negative:
        raise RunError("--positive and --negative must differ")
    episodes = sorted(set(int(e) for e in episodes))
    eval_seeds = list(range(n_eval_seeds))
    red = red or run.exp.red
    pairing = run.exp.pairing
    values: dict[str, dict[int, np.ndarray]] = {}
    for cond in (positive, negative):
        values[cond] = {}
        for seed in run.seeds(cond):
            if run.on_deception:
                values[cond][seed] = agent_soo_values(run.model(cond, seed), run.env_config(cond),
                                                      run.red(cond, seed, red), episodes,
                                                      n_eval_seeds, pairing)
            else:  # another env: the world's own agents and layout
                values[cond][seed] = world_soo_values(run, cond, seed, red, episodes,
                                                      n_eval_seeds, pairing)
            if progress is not None:
                progress(cond, seed)
    pair_seeds = sorted(set(values[positive]) & set(values[negative]))
    curve = []
    for j, e in enumerate(episodes):
        acc_per_eval, auc_per_eval = [], []
        for i in range(len(eval_seeds)):
            if pair_seeds:
                pos = np.array([values[positive][k][i, j] for k in pair_seeds])
                neg = np.array([values[negative][k][i, j] for k in pair_seeds])
                acc_per_eval.append(float(np.mean((neg < pos) + 0.5 * (neg == pos))))
            scores = [v[i, j] for v in values[positive].values()] + \
                     [v[i, j] for v in values[negative].values()]
            labels = [1] * len(values[positive]) + [0] * len(values[negative])
            auc_per_eval.append(auroc(scores, labels))
        acc, acc_ci = mean_ci95(acc_per_eval) if acc_per_eval else (float("nan"), 0.0)
        auc, auc_ci = mean_ci95(auc_per_eval)
        curve.append({"episodes": e, "accuracy": acc, "accuracy_ci95": acc_ci, "auroc": auc,
                      "auroc_ci95": auc_ci,
                      "mean_value_positive": float(np.mean([v[:, j] for v in values[positive].values()])),
                      "mean_value_negative": float(np.mean([v[:, j] for v in values[negative].values()]))})
    return {
        "run": str(run.path),
        "positive": positive,
        "negative": negative,
        "pairs": pair_seeds,
        "n_positive": len(values[positive]),
        "n_negative": len(values[negative]),
        "episodes": episodes,
        "eval_seeds": eval_seeds,
        "red": red,
        "pairing": pairing,
        "values": {c: {str(k): v.tolist() for k, v in d.items()} for c, d in values.items()},
        "curve": curve,
    }


def format_curve(result: dict[str, Any]) -> str:
    """Plain-text table of ``classify_run``'s curve."""
    head = (f"classifier: positive={result['positive']} ({result['n_positive']} agents), "
            f"negative={result['negative']} ({result['n_negative']} agents), "
            f"{len(result['pairs'])} pairs, {len(result['eval_seeds'])} evaluation seeds")
    cols = f"{'episodes':>9} {'accuracy':>16} {'AUROC':>16} {'SOO value +':>12} {'SOO value -':>12}"
    lines = [head, cols, "-" * len(cols)]
    for row in result["curve"]:
        lines.append(f"{row['episodes']:>9d} {row['accuracy']:>8.3f} ± {row['accuracy_ci95']:<5.3f} "
                     f"{row['auroc']:>8.3f} ± {row['auroc_ci95']:<5.3f} "
                     f"{row['mean_value_positive']:>12.3f} {row['mean_value_negative']:>12.3f}")
    return "\n".join(lines)
