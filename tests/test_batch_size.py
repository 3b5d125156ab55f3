"""The batch-size study: steps to target counted exactly, the NQM's moment recursion against a Monte-Carlo simulation
of the same model, and the small preset end to end through the real command (figures, table, continuing).

Bugs these exist to catch: a count off by one step or one evaluation; a best lr chosen from seeds that never reached
the target; an NQM recursion with a wrong term (noise on the velocity, the step's sign), which sampling exposes;
a study that retrains finished grids when run again.
"""

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lit_momentum import nqm
from lit_momentum.batch_size.main import COLUMNS
from lit_momentum.batch_size.main import main as study_main
from lit_momentum.batch_size.steps import best_lr, critical_batch_size, first_reached
from tests.conftest import refusal


def test_steps_to_target_on_a_tiny_curve_by_hand() -> None:
    steps, acc = [10, 20, 30, 40], [0.2, 0.49, 0.5, 0.7]
    assert first_reached(steps, acc, 0.5, higher=True) == 30  # at the target counts
    assert first_reached(steps, acc, 0.8, higher=True) is None
    assert first_reached([3, 6, 9], [0.9, 0.6, 0.61], 0.6, higher=False) == 6
    best = best_lr({0.1: [30, 50], 0.3: [20, None], 1.0: [40, 40]})  # 0.3 is fastest but one seed never got there
    assert (best.lr, best.steps, best.low, best.high, best.at_edge) == (0.1, 40, 30, 50, True)
    assert best_lr({0.1: [None]}).lr is None


def test_the_critical_batch_size_is_where_perfect_scaling_ends() -> None:
    batches = [16, 32, 64, 128, 256]
    assert critical_batch_size(batches, [800, 400, 200, 100, 50]) is None  # perfect all the way
    # steps double relative to perfect scaling between 64 (ratio 1.5) and 128 (ratio 3): at 64 * 2^(log(2/1.5)/log 2)
    crit = critical_batch_size(batches, [800, 400, 300, 300, 300])
    assert crit == pytest.approx(64 * 2 ** (np.log(2 / 1.5) / np.log(2)))


def test_the_nqm_recursion_is_the_mean_of_sampled_runs() -> None:
    """The exact second-moment recursion against 4000 sampled runs of SGD with momentum on the same noisy quadratic:
    equal within 4 standard errors at every checked step, for plain SGD and heavy momentum, small and large batch."""
    h = nqm.spectrum(50)
    for lr, m, batch in ((0.5, 0.0, 4), (0.2, 0.9, 4), (0.05, 0.99, 64)):
        exact = nqm.expected_loss(h, lr, m, batch, 200)
        rng = np.random.default_rng(1)
        runs = 4000
        w, v = np.ones((runs, h.size)), np.zeros((runs, h.size))
        for t in range(1, 201):
            v = m * v + h * w + rng.standard_normal(w.shape) * np.sqrt(h / batch)
            w = w - lr * v
            if t in (1, 10, 50, 200):
                loss = 0.5 * (h * w * w).sum(-1)
                error = loss.std() / np.sqrt(runs)
                assert abs(loss.mean() - exact[t]) < 4 * error, (lr, m, batch, t, loss.mean(), exact[t], error)
    mc = nqm.simulate(h, 0.2, 0.9, 4, 50, runs=1000)
    assert abs(mc[50] - nqm.expected_loss(h, 0.2, 0.9, 4, 50)[50]) < 0.1 * mc[50]


def test_the_nqm_step_count_is_the_recursions_first_step_below_the_target() -> None:
    h = nqm.spectrum(100)
    lrs, ms = np.array([0.05, 0.3, 1.0, 3.0, 5.0]), np.array([0.0, 0.9, 0.5, 0.0, 0.0])
    for batch in (8, 1024):
        counts = nqm.steps_to_target(h, lrs, ms, batch, 0.3)
        for lr, m, count in zip(lrs, ms, counts):
            curve = nqm.expected_loss(h, lr, m, batch, 3000)
            below = np.nonzero(curve <= 0.3)[0]
            assert count == (below[0] if below.size else np.inf), (lr, m, batch)
    assert np.isinf(nqm.steps_to_target(h, np.array([5.0]), np.array([0.0]), 1024, 0.3)[0])  # lr h > 2: diverges


def test_the_quick_study_writes_its_table_and_figures_and_continues_without_retraining(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "study"
    args = ["--out", str(out), "--quick", "--trainer.enable_progress_bar", "false"]
    study_main(args)
    with open(out / "batch_size.csv") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames[:8] == COLUMNS[:8] == ["source", "optimizer", "momentum", "batch_size", "best_lr",
                                                   "steps", "steps_min", "steps_max"]
    assert {r["source"] for r in rows} == {"mnist1d", "random", "nqm"}
    for r in rows:
        if r["steps"]:
            assert float(r["steps_min"]) <= float(r["steps"]) <= float(r["steps_max"])
            assert float(r["best_effective_lr"]) == pytest.approx(float(r["best_lr"]) / (1 - float(r["momentum"])))
    nqm_rows = {(float(r["momentum"]), int(r["batch_size"])): float(r["steps"]) for r in rows if r["source"] == "nqm"}
    assert nqm_rows[0.0, 65536] > 5 * nqm_rows[0.9, 65536]  # at large batch momentum accelerates
    assert nqm_rows[0.0, 1] == pytest.approx(nqm_rows[0.9, 1], rel=0.05)  # at batch 1 it is a bigger step only
    for figure in ("steps_vs_batch.png", "best_lr_vs_batch.png"):
        with Image.open(out / figure) as img:
            assert img.width > 1000 and img.height > 300
    assert "critical batch size" in capsys.readouterr().out
    trained = {p: p.stat().st_mtime_ns for p in out.glob("*/units/*/result.json")}
    assert len(trained) == 3 + 4  # a grid per batch size: 3 on MNIST-1D, 4 on random labels
    table = (out / "batch_size.csv").read_text()
    study_main(args)
    assert {p: p.stat().st_mtime_ns for p in out.glob("*/units/*/result.json")} == trained, "a grid was retrained"
    assert (out / "batch_size.csv").read_text() == table


@pytest.mark.parametrize("args, message", [
    (["--out", "x", "--sources", "bogus"], "argument --sources: invalid choice: 'bogus'"),
    ([], "the following arguments are required: --out"),
])
def test_bad_study_options_are_one_line(args: list[str], message: str, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert message in refusal(study_main, args)
    assert not list(tmp_path.iterdir())
