"""The grid faithful to a researcher's own code: a data module with a plain shuffling ``DataLoader`` and random
augmentation (``tests.probe_data.ShuffledBlobs``), random layers (dropout, functional noise), ``nn.GRU``, lazy
modules, branches on a point's own values, bf16. Each grid point is its own ``train.py`` run: to the bit on the loop
path (its step losses and its weights), within 1e-5 where products are batched; a continued run is the uninterrupted
one, bit for bit.

Bugs these exist to catch: a loader's order or a transform's noise depending on the global generator's history (how
many networks were built, whether the run was continued); every point drawing the same dropout masks, or masks other
than its run's; a random layer's stream not restored on resume; vmap's refusals refusing what the loop trains; the
loop path computing a loss or an update otherwise than the single run; a path not said; a one-point sweep that is
not the grid's point; a continued grid's best validation accuracy rebuilt from anything but the accuracies.
"""

from pathlib import Path

import pytest
import torch

from lit_momentum.command import main as train_main
from tests.conftest import (
    ROOT,
    assert_same_state,
    by_run,
    grid_run,
    kill_after_checkpoint,
    load_ckpt,
    run_dirs,
    run_sweep,
    scalars,
    spelled,
    train_cmd,
)

BLOBS = ["--data", "tests.probe_data.ShuffledBlobs"]
GRID = ["--lr", "0.02", "0.1", "--momentum", "0", "0.9", "--seeds", "0", "1"]
COMPARED = ["lr0.1_m0.9_seed1", "lr0.02_m0_seed0"]


def quiet(tmp_path: Path) -> list[str]:
    return ["--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false"]


def single(tmp_path: Path, base: list[str], row: dict[str, str], epochs: int, threads: int | None = None) -> Path:
    """The ``train.py`` run a grid point stands for (the hand-written rule, as the grid's), on ``threads`` intra-op
    threads (None: the process's); its run directory."""
    root = tmp_path / "single" / row["run"]
    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    try:
        train_main([*quiet(root), *base, "--max_epochs", str(epochs), "--model.momentum_impl", "manual",
                    "--seed_everything", row["seed"], "--model.lr", row["lr"], "--model.momentum", row["momentum"]])
    finally:
        torch.set_num_threads(before)
    return run_dirs(root)[0]


def weights(state: dict, k: int | None = None) -> list[torch.Tensor]:
    """A checkpoint's network parameters in order: a single run's, or grid point k's slices."""
    if k is None:  # a tied weight once, as the optimizer and the grid hold it (the state dict has it twice)
        found = {v.untyped_storage().data_ptr(): v for name, v in state.items()
                 if name.startswith("net.") and v.is_floating_point()}
        return list(found.values())
    return [state[f"net.params.{i}"][k] for i in range(sum(n.startswith("net.params.") for n in state))]


def compare(tmp_path: Path, base: list[str], exact: bool, epochs: int = 3, threads: int | None = None) -> None:
    """Every COMPARED point of the grid against its own train.py run (on ``threads``): every step's loss, the
    validation accuracy, and (``exact``) the final weights, to the bit; else within 1e-5."""
    grid = tmp_path / "grid"
    rows = run_sweep([*quiet(tmp_path), *base], grid, *GRID, "--max_epochs", str(epochs))
    points = [spelled(r["run"]) for r in rows]
    for name in COMPARED:
        run = single(tmp_path, base, by_run(rows)[spelled(name)], epochs, threads)
        one, point = scalars(run), scalars(grid_run(grid, name))
        for tag in ("train/loss_step", "train/loss", "val/loss", "val/acc"):
            assert [s for s, _ in one[tag]] == [s for s, _ in point[tag]] and len(point[tag]) >= epochs, tag
            worst = max(abs(a - b) for (_, a), (_, b) in zip(one[tag], point[tag]))
            assert worst == 0 if exact else worst <= 1e-5, (name, tag, worst)
        assert point["val/loss"][-1][1] < point["val/loss"][0][1], f"{name} did not train"  # (no dropout there)
        if exact:
            mine = weights(load_ckpt(run / "checkpoints" / "last.ckpt")["state_dict"])
            ours = weights(load_ckpt(grid / "last.ckpt")["state_dict"], points.index(spelled(name)))
            assert len(mine) == len(ours) and all(torch.equal(a, b) for a, b in zip(mine, ours)), name


def test_a_shuffling_loader_and_random_augmentation_give_each_point_its_runs_batches(tmp_path: Path) -> None:
    """A plain DataLoader(shuffle=True) over a Dataset that adds noise as it reads: the batches depend on the global
    generator, which building 8 networks uses otherwise than building one. Batched products: within 1e-5."""
    compare(tmp_path, [*BLOBS, "--model.net.hidden", "[16]"], exact=False)


@pytest.mark.parametrize("net", ["tests.probe_nets.DropoutMLP", "tests.probe_nets.NoiseMLP", "GRU1D",
                                 "tests.probe_nets.PointBranch"])
def test_what_vmap_cannot_batch_trains_point_by_point_each_point_its_run_to_the_bit(
        tmp_path: Path, net: str, capsys: pytest.CaptureFixture) -> None:
    """Dropout (a module), noise and F.dropout (functions), nn.GRU (no batching rule), a branch on a point's own
    weights: point by point, each point's random numbers from its own stream, its computation its run's. What draws
    nothing (the GRU, the branch) has its points side by side on one thread each: its run on one thread."""
    base = [*BLOBS, "--model.net", net, *(["--model.net.hidden", "8"] if net == "GRU1D" else [])]
    draws = "Dropout" in net or "Noise" in net
    compare(tmp_path, base, exact=True, epochs=6 if net == "GRU1D" else 3, threads=None if draws else 1)
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("grid: ")]
    assert len(said) == 1 and "trained point by point" in said[0], said
    assert ("on one thread each" in said[0]) is (not draws and torch.get_num_threads() > 1), said


def test_a_lazy_network_is_built_when_its_run_is_and_batches(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """nn.LazyLinear: materialised when built (its weights under its seed, before any data is drawn), then vmap."""
    compare(tmp_path, [*BLOBS, "--model.net", "tests.probe_nets.LazyMLP"], exact=False)
    assert "grid: LazyMLP: batched with torch.func.vmap" in capsys.readouterr().err


def test_a_transformer_layer_batches_and_its_slow_ops_are_said_once(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                                    recwarn: pytest.WarningsRecorder) -> None:
    """nn.TransformerEncoderLayer under vmap: each point its run (within 1e-5); the ops PyTorch has no batching rule
    for named in the grid's one line, not PyTorch's multi-line warning at every forward."""
    compare(tmp_path, [*BLOBS, "--model.net", "tests.probe_nets.TinyTransformer"], exact=False)
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if line.startswith("grid: ")]
    assert len(said) == 1 and "batched with torch.func.vmap (PyTorch has no batching rule for aten::" in said[0], said
    assert not [w for w in recwarn if "performance drop" in str(w.message)]  # (the grid's and the runs' forwards)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_tied_weights_train_in_the_grid_each_point_its_run(tmp_path: Path, dropout: float,
                                                          capsys: pytest.CaptureFixture) -> None:
    """One Parameter under two names (tied weights): one tensor per point in the grid, updated by the gradient of
    both uses, as the run's optimizer updates it (the meta copy of the network once untied it: PyTorch's "invalid
    gradient ... expected device meta"). Under vmap (within 1e-5) and point by point (dropout: to the bit)."""
    compare(tmp_path, [*BLOBS, "--model.net", "tests.probe_nets.TiedMLP", "--model.net.dropout", str(dropout)],
            exact=dropout > 0)
    path = "trained point by point" if dropout else "batched with torch.func.vmap"
    assert f"grid: TiedMLP: {path}" in capsys.readouterr().err


@pytest.mark.parametrize("workers", [[], ["--data.workers", "1", "--data.persistent", "true"]],
                         ids=["no-workers", "persistent-worker"])  # (one started every epoch: tests/test_continue.py)
def test_data_drawn_at_construction_and_setup_gives_each_point_its_runs_data(tmp_path: Path, workers: list[str]
                                                                             ) -> None:
    """A researcher's module: inputs drawn in __init__ and label noise in setup from the global generator, a noising
    shuffling loader, uneven validation batches, a tied network with dropout. Each draws from the data's stream, the
    network from its seed alone: each point is its run to the bit (seed 1's run once drew its data under seed 1,
    the grid under the sweep's seed)."""
    compare(tmp_path, ["--data", "tests.probe_data.DrawnAtStart", *workers, "--model.net", "tests.probe_nets.TiedMLP",
                       "--model.net.dropout", "0.3"], exact=True)


def test_bf16_points_keep_their_settings_and_equal_their_bf16_runs(tmp_path: Path) -> None:
    """Under --precision bf16-true momentum 0.99 and 0.9 have no bf16 value: each point computes with the number its
    run hands torch.optim, and on the loop path equals its bf16 run to the bit."""
    compare(tmp_path, [*BLOBS, "--model.net", "tests.probe_nets.DropoutMLP", "--precision", "bf16-true"],
            exact=True)


@pytest.mark.slow
def test_a_one_point_sweep_is_the_grids_point_to_the_bit(tmp_path: Path) -> None:
    """How to re-run one point of a grid exactly: a sweep of that point alone. Its step losses and weights equal
    the grid's point to the bit, on the hand-batched MLP and on the loop path."""
    for net in (["--model.net.hidden", "[16]"], ["--model.net", "tests.probe_nets.DropoutMLP"]):
        base = [*quiet(tmp_path), *BLOBS, *net, "--max_epochs", "2"]
        tag = net[-1].strip("[]").rpartition(".")[2]
        rows = run_sweep(base, tmp_path / f"grid{tag}", *GRID)
        alone = run_sweep(base, tmp_path / f"one{tag}", "--lr", "0.1", "--momentum", "0.9", "--seeds", "1")
        k = [spelled(r["run"]) for r in rows].index(spelled("lr0.1_m0.9_seed1"))
        assert {**rows[k], "run": ""} == {**alone[0], "run": ""}  # (the grid's name has its place: 3_lr0.1_...)
        a = scalars(grid_run(tmp_path / f"grid{tag}", "lr0.1_m0.9_seed1"))["train/loss_step"]
        assert a == scalars(tmp_path / f"one{tag}" / "lr0.1_m0.9_seed1")["train/loss_step"]
        grid, one = (load_ckpt(tmp_path / d / "last.ckpt")["state_dict"] for d in (f"grid{tag}", f"one{tag}"))
        assert all(torch.equal(a, b) for a, b in zip(weights(grid, k), weights(one, 0)))


@pytest.mark.slow
def test_a_continued_run_and_grid_with_a_shuffling_loader_and_dropout_are_bit_for_bit(tmp_path: Path) -> None:
    """Stopped after 2 epochs and continued to 4 from the checkpoint: the weights, velocities and every logged step
    are those of the uninterrupted 4 epochs (the loader's order, the noise and the masks come from (seed, epoch))."""
    base = [*BLOBS, "--model.net", "tests.probe_nets.DropoutMLP", "--model.lr", "0.2"]
    for name, epochs in (("straight", 4), ("stopped", 2)):
        train_main([*quiet(tmp_path / name), *base, "--max_epochs", str(epochs)])
    ckpt = run_dirs(tmp_path / "stopped")[0] / "checkpoints" / "last.ckpt"
    train_main([*quiet(tmp_path / "stopped"), "--max_epochs", "4", "--ckpt_path", str(ckpt)])
    straight, stopped = (run_dirs(tmp_path / n)[0] for n in ("straight", "stopped"))
    assert_same_state(load_ckpt(straight / "checkpoints" / "last.ckpt"), load_ckpt(ckpt))
    assert scalars(straight)["train/loss_step"] == scalars(stopped)["train/loss_step"]
    grid = [*quiet(tmp_path), *BLOBS, "--model.net", "tests.probe_nets.DropoutMLP", *GRID,
            "--checkpoint.every_n_epochs", "1"]
    run_sweep(grid, tmp_path / "gstraight", "--max_epochs", "4")
    run_sweep(grid, tmp_path / "gstopped", "--max_epochs", "2")
    run_sweep(grid, tmp_path / "gstopped", "--max_epochs", "4", "--ckpt_path", str(tmp_path / "gstopped" / "last.ckpt"))
    assert_same_state(load_ckpt(tmp_path / "gstraight" / "last.ckpt"), load_ckpt(tmp_path / "gstopped" / "last.ckpt"))
    assert (tmp_path / "gstopped" / "summary.csv").read_text() == (tmp_path / "gstraight" / "summary.csv").read_text()
    for run in COMPARED:  # every curve, val/acc_best (rebuilt from the history on resume) included
        curves = scalars(grid_run(tmp_path / "gstopped", run))
        assert "val/acc_best" in curves and curves == scalars(grid_run(tmp_path / "gstraight", run)), run


@pytest.mark.slow
def test_a_killed_run_with_a_shuffling_loader_and_dropout_continues_bit_for_bit(tmp_path: Path) -> None:
    """The same, with a real SIGKILL right after the epoch-2 checkpoint of a run in its own process."""
    import os

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    base = [*BLOBS, "--model.net", "tests.probe_nets.DropoutMLP", "--model.lr", "0.2", "--max_epochs", "40",
            "--checkpoint.every_n_epochs", "2", "--trainer.enable_progress_bar", "false"]
    train_main([*quiet(tmp_path / "straight"), *base])
    killed = tmp_path / "killed"
    run = killed / "lightning_logs" / "ShuffledBlobs_DropoutMLP_builtin_m0.9_lr0.2" / "version_0"
    ckpt = run / "checkpoints" / "last.ckpt"
    kill_after_checkpoint(train_cmd(*quiet(killed), *base), ckpt, epoch=3, env=env)
    train_main([*quiet(killed), "--max_epochs", "40", "--ckpt_path", str(ckpt)])
    assert_same_state(load_ckpt(run_dirs(tmp_path / "straight")[0] / "checkpoints" / "last.ckpt"), load_ckpt(ckpt))
