"""The batch-size study: steps to target counted exactly, the NQM's moment recursion against a Monte-Carlo simulation
of the same model, and the small preset end to end through the real command (figures, table, continuing).

Bugs these exist to catch: a count off by one step or one evaluation; a best lr chosen from seeds that never reached
the target; an early stop that ends a grid before its answer is decided (without its ``seeds x`` factor, or counting
a validation of a point's diverging epoch that the study does not count); a validation recorded at the wrong step;
an NQM recursion with a wrong term (noise on the velocity, the step's sign), which sampling exposes; a study that
retrains finished grids when run again.
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
from lit_momentum.batch_size.stop import StopWhenDecided
from lit_momentum.sweep.merge import curves
from lit_momentum.sweep.points import GridPoint
from tests.conftest import refusal, run_sweep


def test_steps_to_target_on_a_tiny_curve_by_hand() -> None:
    steps, acc = [10, 20, 30, 40], [0.2, 0.49, 0.5, 0.7]
    assert first_reached(steps, acc, 0.5, higher=True) == 30  # at the target counts
    assert first_reached(steps, acc, 0.8, higher=True) is None
    assert first_reached([3, 6, 9], [0.9, 0.6, 0.61], 0.6, higher=False) == 6
    best = best_lr({0.1: [30, 50], 0.3: [20, None], 1.0: [40, 40]})  # 0.3 is fastest but one seed never got there
    assert (best.lr, best.steps, best.low, best.high, best.at_edge) == (0.1, 40, 30, 50, True)
    assert best_lr({0.1: [None]}).lr is None


class ConstructedGrid:
    """What StopWhenDecided and the study read of a grid, made by hand: momentum 0.9, lr 0.1 and 0.3 (two seeds
    each) and lr 1.0 (one seed), validated every 5 steps; lr 1.0 reaches the target at step 5, in the epoch it
    diverges in (epoch 0, steps 1-10), so neither count may take it."""

    def __init__(self, global_step: int) -> None:
        import torch

        self.points = [GridPoint(lr, 0.9, 0.0, False, 0.0, 0.999, 1e-8, seed) for lr, seed in
                       ((0.1, 0), (0.1, 1), (0.3, 0), (0.3, 1), (1.0, 0))]
        self.diverged_epoch = torch.tensor([-1, -1, -1, -1, 0])
        accs = {5: [0.1, 0.1, 0.1, 0.1, 0.9], 10: [0.5, 0.1, 0.2, 0.2, 0.0], 15: [0.5, 0.1, 0.2, 0.2, 0.0],
                20: [0.6, 0.5, 0.2, 0.2, 0.0]}  # lr 0.1 reaches 0.5 at steps 10 and 20 (mean 15); lr 0.3 never
        self.val_history = [((step - 1) // 10, step, [0.0] * 5, acc) for step, acc in accs.items()]
        self.history = [[1.0] * 5, [1.0] * 5]
        self.history_steps = [10, 20]
        self.global_step = global_step


def test_the_early_stop_waits_seeds_times_the_best_mean_and_ignores_a_diverging_epoch() -> None:
    """Decided once no lr can beat the best: at step seeds x 15 = 30, not before (without the seeds factor it
    would stop at 15); lr 1.0 reached the target only in the epoch it diverged in, which the study does not count,
    so it must not decide anything either."""
    stop = StopWhenDecided(target=0.5, metric="val_acc")
    assert stop.decided(ConstructedGrid(global_step=30))
    counted = curves(ConstructedGrid(global_step=30))  # what the study counts on
    assert counted["lr1_m0.9_seed0"]["val_step"] == [] and counted["lr0.1_m0.9_seed1"]["val_step"] == [5, 10, 15, 20]
    # the bugs this catches: without the seeds factor it decides at 15; counting lr 1.0's step 5 makes it the best
    # (mean 5) and decides at 2 x 5 = 10
    assert not any(stop.decided(ConstructedGrid(global_step=step)) for step in (10, 15, 29))


def test_the_early_stop_stops_at_the_validation_that_decides_not_the_one_after(tiny: list[str],
                                                                                tmp_path: Path) -> None:
    """Target 0 (every validation reaches it): decided at the first validation (step 2 of a grid of one seed), so
    the grid stops there. Read one validation late (the module records it after the callbacks' epoch-end hook), it
    would train on to the second (step 4)."""
    import json

    out = tmp_path / "grid"
    run_sweep([*tiny, "--data.val_samples", "64"], out, "--lr", "0.1", "--trainer.val_check_interval", "2",
              "--trainer.max_steps", "8", "--max_epochs", "-1",
              "--trainer.callbacks+=lit_momentum.batch_size.stop.StopWhenDecided", "--trainer.callbacks.target=0.0")
    curve = json.loads((out / "result.json").read_text())["curves"]["lr0.1_m0.9_seed0"]
    assert curve["val_step"] == [2]


def test_validations_are_recorded_at_the_step_they_were_made(tiny: list[str], tmp_path: Path) -> None:
    """Validation every 2 of an epoch's 4 steps, as the study validates several times an epoch: the curves the
    study counts on hold steps 2, 4, 6, 8 (steps done when each validation ran), and TensorBoard has them at the
    step of the last training step before them (1, 3, 5, 7), where the train curves put that step."""
    import json

    from tests.conftest import scalars

    out = tmp_path / "grid"
    run_sweep([*tiny, "--data.val_samples", "64"], out, "--lr", "0.1", "--trainer.val_check_interval", "2",
              "--trainer.max_steps", "8", "--max_epochs", "-1")
    curve = json.loads((out / "result.json").read_text())["curves"]["lr0.1_m0.9_seed0"]
    assert curve["val_step"] == [2, 4, 6, 8] and curve["train_step"] == [4, 8]
    assert [s for s, _ in scalars(out / "lr0.1_m0.9_seed0")["val/acc"]] == [1, 3, 5, 7]


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


@pytest.mark.slow
def test_the_quick_study_writes_its_table_and_figures_and_continues_without_retraining(
        tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "study"
    args = ["--out", str(out), "--quick", "--sources", "mnist1d", "random", "nqm", "--trainer.enable_progress_bar",
            "false"]
    study_main(args)
    with open(out / "batch_size.csv") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames[:8] == COLUMNS[:8] == ["source", "optimizer", "momentum", "batch_size", "best_lr",
                                                   "steps", "steps_min", "steps_max"]
    assert {r["source"] for r in rows} == {"mnist1d", "random", "nqm"}
    assert {(r["source"], r["optimizer"]) for r in rows if r["optimizer"] == "adam"} == {("mnist1d", "adam"),
                                                                                          ("nqm", "adam")}
    for r in rows:
        if r["steps"]:
            assert float(r["steps_min"]) <= float(r["steps"]) <= float(r["steps_max"])
            if r["optimizer"] != "adam":  # Adam's step is its lr: no effective step
                assert float(r["best_effective_lr"]) == pytest.approx(float(r["best_lr"]) / (1 - float(r["momentum"])))
    nqm_rows = {(r["optimizer"], float(r["momentum"]), int(r["batch_size"])): float(r["steps"])
                for r in rows if r["source"] == "nqm"}
    assert nqm_rows["sgd", 0.0, 65536] > 5 * nqm_rows["momentum", 0.9, 65536]  # at large batch momentum accelerates
    assert nqm_rows["sgd", 0.0, 1] == pytest.approx(nqm_rows["momentum", 0.9, 1], rel=0.05)  # at batch 1: a step
    assert nqm_rows["adam", 0.9, 256] < nqm_rows["momentum", 0.9, 256]  # the preconditioner: fewer steps
    for figure in ("steps_vs_batch.png", "best_lr_vs_batch.png"):
        with Image.open(out / figure) as img:
            assert img.width > 1000 and img.height > 300
    assert "critical batch size" in capsys.readouterr().out
    trained = {p: p.stat().st_mtime_ns for p in [*out.glob("*/units/*/result.json"), out / "nqm.json"]}
    assert len(trained) == 3 + 3 + 4 + 1  # a grid per batch size: 3 on MNIST-1D (and 3 for Adam), 4 on random
    # labels; the NQM's rows
    table = (out / "batch_size.csv").read_text()
    study_main(args)
    assert {p: p.stat().st_mtime_ns for p in [*out.glob("*/units/*/result.json"), out / "nqm.json"]} == trained, \
        "a grid was retrained or the NQM computed again"
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
