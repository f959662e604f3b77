"""The mask around a dynamics shift: `around_shift` weighs log lines by their
updates, against a hand computation; `shift_step` reads config.yaml and never fails the
summary; `dreamer-report mask` shows the columns only when a run has a shift."""

import json

import pytest
from typer.testing import CliRunner

from analysis import mask
from cli import app


def test_around_shift_weights_lines_by_their_updates():
    steps = [1000, 2000, 3000, 3500, 5000]
    active = [0.0, 0.5, 0.0, 1.0, 0.25]
    updates = [10, 30, 40, 50, 90]  # lines hold 10, 20, 10, 10, 40 updates
    out = mask.around_shift(steps, active, updates, shift=2000)
    assert out["active_before"] == pytest.approx((0 * 10 + 0.5 * 20) / 30)
    assert out["active_after"] == pytest.approx((0 * 10 + 1.0 * 10 + 0.25 * 40) / 60)
    assert out["first_active_after"] == 3500  # the line ending at 3000 had the mask off
    equal = mask.around_shift(steps, active, None, shift=2000)
    assert equal["active_after"] == pytest.approx((0 + 1.0 + 0.25) / 3)


def test_around_shift_with_no_firing_or_no_lines_after():
    out = mask.around_shift([100, 200], [0.0, 0.0], [5, 10], shift=150)
    assert out == {"active_before": 0.0, "active_after": 0.0, "first_active_after": None}
    out = mask.around_shift([100, 200], [0.2, 0.0], [5, 10], shift=500)
    assert out["active_before"] == pytest.approx(0.1) and out["active_after"] is None


@pytest.mark.parametrize(
    "text, expected",
    [
        ("env:\n  gym:\n    shift: {step: 9500, gravity: 4.0}\n", 9500),
        ("env:\n  gym:\n    shift: {step: 0}\n", None),
        ("env:\n  atari100k:\n    shift: {step: 4000, mode: 3}\n", 4000),  # the visual case
        ("env:\n  gym:\n    shift: {step: 'soon'}\n", None),
        ("seed: 0\n", None),
        ("env: [unclosed\n", None),  # unreadable: the summary goes on without the shift
    ],
)
def test_shift_step_from_config(tmp_path, text, expected):
    (tmp_path / "config.yaml").write_text(text)
    assert mask.shift_step(tmp_path) == expected
    assert mask.shift_step(tmp_path / "missing") is None


def _run(root, method, shift, active):
    run = root / f"shift_cartpole_{method}" / "seed0_20261127T000000"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(
        f"seed: 0\ntask: gym_CartPole-v1\nmethod: ''\nenv:\n  gym:\n    shift: {{step: {shift}}}\n"
    )
    (run / "scores.jsonl").write_text(json.dumps({"step": 100, "episode/score": 10.0}) + "\n")
    with open(run / "metrics.jsonl", "w") as f:
        for i, value in enumerate(active):
            f.write(
                json.dumps(
                    {
                        "step": 1000 * (i + 1),
                        "train/loss/dyn": 1.0 + value,
                        "train/opt/updates": 10 * (i + 1),
                        "train/imag_adapt/active": value,
                        "train/imag_adapt/horizon_eff": 15 - value,
                    }
                )
                + "\n"
            )
    return run


def test_mask_command_reports_firing_around_the_shift(tmp_path):
    runs = tmp_path / "runs"
    _run(runs, "adapt", 2500, [0.0, 0.0, 0.4, 0.1])
    result = CliRunner().invoke(
        app, ["mask", str(runs / "shift_cartpole_adapt"), "--out", str(tmp_path / "m"), "--no-cache"]
    )
    assert result.exit_code == 0, result.output
    assert "active before" in result.output and "first on after" in result.output
    row = result.output.split("shift_cartpole")[1]
    assert "2,500" in row and "0.0%" in row and "25.0%" in row and "3,000" in row
    assert (tmp_path / "m" / "mask_over_training.png").is_file()
