"""Any optimizer per grid point (``lit_momentum.sweep.point_optimizers``): each point its own instance of the class,
its update its ``train.py`` run's, to the bit; across a resume; under a schedule that cycles the family's momentum.

Runs train the real configuration shrunk by ``configs/debug.yaml`` (dim 64, 256 samples, 4 steps an epoch) with
``DropoutMLP``, which the grid trains on its loop path: each point's gradient is its run's to the bit there, so
every loss and weight can be compared exactly (on the batched paths the gradients agree to rounding).

Bugs these exist to catch: a point's optimizer over copies instead of its parameters (nothing trains), over another
point's slices, with another point's lr or momentum, or with the momentum where the family does not keep it; a
frozen point stepped; one point's state restored into another's on resume; a schedule that leaves the points'
optimizers alone; the grid refusing a class ``train.py`` takes, or taking one it cannot step (L-BFGS).
"""

import csv
from pathlib import Path

import pytest
import torch

from lit_momentum.command import main as train_main
from lit_momentum.optimizers import build_optimizer
from lit_momentum.sweep import main as sweep_main
from lit_momentum.sweep.point_optimizers import PointOptimizers
from tests.conftest import by_run, grid_run, load_ckpt, run_dirs, run_sweep, scalars, spelled

NET = ["--model.net", "tests.probe_nets.DropoutMLP"]  # the loop path: gradients to the bit
OWN = "tests.test_optimizers.ArticleSGD"  # a researcher's own class, written in a test module
LION = "lit_momentum.lion.Lion"  # the docs' example of one (betas[0] its momentum)
CASES = {  # optimizer, its own options, the grid's axes
    "rmsprop": (["--optimizer", "RMSprop", "--optimizer.alpha", "0.95"],
                ["--lr", "0.001", "0.003", "--momentum", "0", "0.9"]),
    "nadam": (["--optimizer", "NAdam", "--optimizer.momentum_decay", "0.01"],
              ["--lr", "0.01", "--momentum", "0.5", "0.9", "--weight_decay", "0", "0.1"]),
    "own-article": (["--optimizer", OWN, "--optimizer.lookahead", "true"],
                    ["--lr", "0.01", "0.03", "--momentum", "0.8", "0.9"]),
    "lion": (["--optimizer", LION, "--optimizer.betas", "[0.9, 0.95]"],
             ["--lr", "0.001", "0.003", "--momentum", "0.8", "0.9"]),
}


def config(path: str, **options: object) -> dict:
    return {"class_path": path, "init_args": options}


@pytest.mark.parametrize("optimizer", [config("torch.optim.RMSprop", alpha=0.9), config("torch.optim.NAdam"),
                                       config(LION, betas=(0.9, 0.95)), config(OWN, lookahead=True),
                                       config("torch.optim.Adagrad")],
                         ids=["rmsprop", "nadam", "lion", "own-article", "adagrad"])
def test_each_points_step_is_its_own_optimizers_to_the_bit(optimizer: dict) -> None:
    """Three points with their own lr, momentum and weight decay, stepped 6 times on stacked gradients, against an
    instance of the class per point on copies of its slices; the state saved after 3 steps continues as it was; a
    schedule's values reach the family's momentum; a frozen point is left as it is and its state zeroed."""
    gen = torch.Generator().manual_seed(0)
    stacked = [torch.randn(3, 4, 5, generator=gen, requires_grad=True), torch.randn(3, 5, generator=gen,
                                                                                  requires_grad=True)]
    settings = [dict(lr=0.01, momentum=0.5, weight_decay=0.0), dict(lr=0.03, momentum=0.9, weight_decay=0.1),
                dict(lr=0.001, momentum=0.0, weight_decay=0.0)]
    if optimizer["class_path"].endswith("Adagrad"):  # (no momentum: the table puts it nowhere)
        settings = [dict(s, momentum=0.9) for s in settings]
    if optimizer["class_path"] == OWN:  # (no weight decay of its own)
        settings = [dict(s, weight_decay=0.0) for s in settings]
    alive = [True, True, True]
    grid = PointOptimizers(stacked, optimizer, settings, lambda: alive)
    own = [[p.detach()[k].clone().requires_grad_() for p in stacked] for k in range(3)]
    runs = [build_optimizer(optimizer, own[k], **s) for k, s in enumerate(settings)]
    for step in range(6):
        grads = [torch.randn(p.shape, generator=gen) for p in stacked]
        if step == 3:  # a resume: a new grid optimizer over the same tensors, from the state saved
            saved = grid.state_dict()
            grid = PointOptimizers(stacked, optimizer, settings, lambda: alive)
            grid.load_state_dict(saved)
        if step == 4:  # a schedule sets point 1's lr and momentum (in the family's place)
            grid.set_points("lr", [0.01, 0.02, 0.001])
            grid.set_points("momentum", [0.5, 0.7, 0.0])
            runs[1].param_groups[0]["lr"] = 0.02
            key = "momentum" if "momentum" in runs[1].param_groups[0] else "betas"
            if key in runs[1].param_groups[0]:
                g = runs[1].param_groups[0]
                g[key] = 0.7 if key == "momentum" else (0.7, g["betas"][1])
        for p, g in zip(stacked, grads):
            p.grad = g.clone()
        grid.step()
        for k in range(3):
            if alive[k]:
                for p, g in zip(own[k], grads):
                    p.grad = g[k].clone()
                runs[k].step()
            assert all(torch.equal(p[k], q) for p, q in zip(stacked, own[k])), (step, k)
        if step == 4:  # point 2 diverged: frozen (its weights zeroed by the grid), not stepped again
            alive[2] = False
            for p, q in zip(stacked, own[2]):
                p.data[2] = 0
                q.data.zero_()
            grid.refresh()
            state = [t for s in grid.points[2].state.values() for t in s.values() if torch.is_tensor(t) and t.dim()]
            assert state and all(not t.any() for t in state)
    assert grid.points[1].param_groups[0]["lr"] == 0.02


def grid_and_run(tiny: list[str], tmp_path: Path, case: str, point: str, *more: str) -> tuple[Path, Path, list]:
    """The case's grid (3 epochs) and the train.py run of its point ``point``; their run directories, the rows."""
    own, axes = CASES[case]
    base = [*tiny, *NET, *own, "--max_epochs", "3", *more]
    rows = run_sweep(base, tmp_path / "grid", *axes)
    row = by_run(rows)[spelled(point)]
    root = tmp_path / "single"
    train_main([*base, "--trainer.default_root_dir", str(root), "--seed_everything", row["seed"], "--model.lr",
                row["lr"], "--model.momentum", row["momentum"], "--model.weight_decay", row["weight_decay"]])
    return grid_run(tmp_path / "grid", point), run_dirs(root)[0], rows


def point_weights(ckpt: dict, k: int) -> list[torch.Tensor]:
    state = ckpt["state_dict"]
    return [state[f"net.params.{i}"][k] for i in range(sum(n.startswith("net.params.") for n in state))]


@pytest.mark.slow
@pytest.mark.parametrize("case, point", [("rmsprop", "lr0.003_m0.9_seed0_RMSprop-alpha0.95"),
                                         ("nadam", "lr0.01_m0.5_wd0.1_seed0_NAdam-momentum_decay0.01"),
                                         ("own-article", "lr0.03_m0.8_seed0_ArticleSGD-lookahead")])
def test_a_grid_point_of_any_optimizer_is_its_train_py_run_to_the_bit(tiny: list[str], tmp_path: Path, case: str,
                                                                      point: str, capsys: pytest.CaptureFixture
                                                                      ) -> None:
    """The point's every step loss, epoch loss and final weights equal its run's; its optimizer's state is the run's
    (the same tensors, in order); every point trained, each its own way; the sweep said the optimizer's path."""
    grid, run, rows = grid_and_run(tiny, tmp_path, case, point)
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("grid: ")]
    assert len(said) == 1 and "stepped point by point, each point its own" in said[0], said
    mine, ours = scalars(run), scalars(grid)
    for tag in ("train/loss_step", "train/loss"):
        assert mine[tag] == ours[tag] and len(ours[tag]) >= 3, tag
    names = [spelled(r["run"]) for r in rows]
    k = names.index(spelled(point))
    a, b = load_ckpt(run / "checkpoints" / "last.ckpt"), load_ckpt(tmp_path / "grid" / "last.ckpt")
    single = [v for name, v in a["state_dict"].items() if name.startswith("net.") and v.is_floating_point()]
    assert len(single) == len(point_weights(b, k))
    assert all(torch.equal(x, y) for x, y in zip(point_weights(b, k), single))
    run_state, point_state = a["optimizer_states"][0]["state"], b["optimizer_states"][0]["points"][k]["state"]
    assert run_state.keys() == point_state.keys() and run_state
    for idx in run_state:
        for key in run_state[idx]:
            assert torch.equal(torch.as_tensor(run_state[idx][key]), torch.as_tensor(point_state[idx][key])), key
    curves = [tuple(v for _, v in scalars(grid_run(tmp_path / "grid", r["run"]))["train/loss"]) for r in rows]
    assert len(set(curves)) == len(rows), "two points trained alike"  # (each its own settings)
    assert all(min(c[1:]) < c[0] for c in curves), "a point did not train"


@pytest.mark.slow
@pytest.mark.parametrize("case", ["rmsprop", "lion"])
def test_a_stopped_grid_under_a_momentum_cycle_continues_as_its_points_runs(tiny: list[str], tmp_path: Path,
                                                                            case: str) -> None:
    """A one-cycle over lr and the family's momentum (RMSprop's ``momentum``, Lion's ``betas[0]``), per step, on a
    grid of seeds and weight decays stopped after 2 of 4 epochs and continued: the point's losses, lr and momentum
    curves and weights are its run's (which never stopped), and the momentum moved."""
    own, _ = CASES[case]
    cycle = ["--lr_scheduler", "OneCycleLR", "--lr_scheduler.max_lr", "0.003", "--lr_scheduler.total_steps", "16",
             "--lr_scheduler_interval", "step"]
    base = [*tiny, *NET, *own, *cycle]
    axes = ["--seeds", "0", "1", "--weight_decay", "0", "0.01"]
    out = tmp_path / "grid"
    sweep_main([*base, *axes, "--max_epochs", "2", "--out", str(out)])
    sweep_main([*base, *axes, "--max_epochs", "4", "--out", str(out), "--ckpt_path", str(out / "last.ckpt")])
    root = tmp_path / "single"
    train_main([*base, "--max_epochs", "4", "--trainer.default_root_dir", str(root), "--seed_everything", "1",
                "--model.weight_decay", "0.01"])
    run = run_dirs(root)[0]
    (point,) = [p for p in out.iterdir() if p.is_dir() and {"wd0.01", "seed1"} <= set(p.name.split("_"))]
    mine, ours = scalars(run), scalars(point)
    for tag in ("train/loss_step", "train/loss", "train/lr", "train/momentum"):
        assert mine[tag] == ours[tag] and len(ours[tag]) >= 4, tag
    assert len({v for _, v in ours["train/momentum"]}) > 2, "the momentum did not cycle"
    a, b = load_ckpt(run / "checkpoints" / "last.ckpt"), load_ckpt(out / "last.ckpt")
    with open(out / "summary.csv") as f:
        k = [spelled(r["run"]) for r in csv.DictReader(f)].index(spelled(point.name))
    single = [v for name, v in a["state_dict"].items() if name.startswith("net.") and v.is_floating_point()]
    assert all(torch.equal(x, y) for x, y in zip(point_weights(b, k), single)) and b["global_step"] == 16
