"""experiments/train_red.py: a PPO red on its own reward, usable as the main job's --red."""

import numpy as np
import pytest

from envs.deception.config import DeceptionConfig
from experiments import train_red
from soo_rl.evaluation.evaluate import make_red
from agents.scripted import MixedBlue


def test_trains_a_red_that_the_experiment_can_load(tmp_path, capsys):
    out = tmp_path / "red.zip"
    assert train_red.main(["--out", str(out), "--timesteps", "4096", "--blue", "mix"]) == 0
    assert "wrote" in capsys.readouterr().out
    cfg = DeceptionConfig(obs_radius=0.25)
    red = make_red(str(out), cfg)
    actions = red.act(np.zeros((5, cfg.red_obs_dim), dtype=np.float32))
    assert actions.shape == (5, 2) and np.all(np.abs(actions) <= 1)
    # refuses to overwrite without --overwrite
    before = out.read_bytes()
    assert train_red.main(["--out", str(out), "--timesteps", "4096"]) == 2
    assert out.read_bytes() == before


def test_mixed_blue_draws_per_world_and_resets_only_masked():
    blue = MixedBlue(DeceptionConfig(), seed=0)
    blue.reset(200)
    first = blue.use_lure.copy()
    assert 0.3 < first.mean() < 0.7
    mask = np.zeros(200, dtype=bool)
    mask[:10] = True
    blue.reset(200, mask)
    np.testing.assert_array_equal(blue.use_lure[10:], first[10:])


@pytest.mark.parametrize("flags, message", [
    (["--timesteps", "0"], "--timesteps must be > 0"),
    (["--obs-radius", "-1"], "--obs-radius must be > 0"),
])
def test_bad_input_one_line(tmp_path, capsys, flags, message):
    assert train_red.main(["--out", str(tmp_path / "r.zip")] + flags) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
