"""``python -m lit_momentum.sweep``: each grid point is the run it stands for; divergence, outputs, resume, DDP, errors.

Grids train the real configuration shrunk by ``configs/debug.yaml`` (dim 64, 256 samples, 4 steps an epoch).

Bugs these exist to catch: a grid point that is not its own train.py run (initial weights, batches, rule, loss); a
diverging point that touches its neighbours or is not frozen; lost or duplicated curves after a resume; a figure
that crashes on an empty panel; an event file whose records TensorBoard's writer would not have written byte for byte.
"""

import csv
import io
import json
import os
import random
import re
import time
import types
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

from lit_momentum.command import main as train_main
from lit_momentum.sweep import logger
from lit_momentum.sweep import main as sweep_main
from lit_momentum.sweep.logger import BAND_TAGS, HPARAMS_METRICS, VAL_BAND_TAGS, VAL_METRICS
from lit_momentum.sweep.main import COLUMNS
from lit_momentum.sweep.records import framed
from tests.conftest import (
    CONFIGS,
    ROOT,
    assert_same_state,
    by_run,
    grid_run,
    kill_after_checkpoint,
    load_ckpt,
    refusal,
    run_dirs,
    run_train,
    scalars,
    spelled,
    sweep_cmd,
    sweep_experiment,
)

DOCS = (ROOT / "docs" / "sweep.md").read_text()


def sweep(tiny: list[str], out: Path, *args: str) -> list[dict[str, str]]:
    """Run a sweep in this process; its summary.csv rows."""
    sweep_main([*tiny, "--out", str(out), *args])
    with open(out / "summary.csv") as f:
        return list(csv.DictReader(f))


def epoch_losses(run: Path) -> list[tuple[int, float]]:
    return scalars(run)["train/loss"]


# (grid options, the points compared with their own train.py run): nesterov, weight decay, seeds, dampening, plain
GRIDS = [
    (["--lr", "0.05", "0.5", "--momentum", "0.9", "--nesterov", "false", "true", "--weight_decay", "0", "0.01",
      "--seeds", "0", "1"],
     ["lr0.5_m0.9_nonesterov_wd0_seed0", "lr0.05_m0.9_nesterov_wd0.01_seed1", "lr0.5_m0.9_nesterov_wd0_seed1"]),
    (["--lr", "0.2", "--momentum", "0", "0.5", "--dampening", "0.3", "--seeds", "2"],
     ["lr0.2_m0.5_damp0.3_seed2", "lr0.2_m0_damp0.3_seed2"]),
    # MNIST-1D: 10 classes, two hidden layers of relu, validation
    (["--config", str(CONFIGS / "mnist1d.yaml"), "--lr", "0.02", "0.05", "--momentum", "0", "0.9", "--seeds", "1"],
     ["lr0.05_m0.9_seed1", "lr0.02_m0_seed1"]),
]


@pytest.mark.parametrize("grid, compared", GRIDS, ids=["nesterov-wd-seeds", "dampening-plain", "mnist1d"])
def test_each_grid_point_equals_its_own_train_py_run(tiny: list[str], tmp_path: Path, grid: list[str],
                                                     compared: list[str]) -> None:
    epochs = 30
    rows = by_run(sweep(tiny, tmp_path / "grid", *grid, "--max_epochs", str(epochs)))
    for name in compared:
        r = rows[spelled(name)]
        single_root = tmp_path / "single" / name
        config = grid[:2] if grid[0] == "--config" else []
        train_main([*tiny, *config, "--trainer.default_root_dir", str(single_root), "--max_epochs", str(epochs),
                    "--model.momentum_impl", "manual", "--seed_everything", r["seed"], "--model.lr", r["lr"],
                    "--model.momentum", r["momentum"], "--model.dampening", r["dampening"],
                    "--model.nesterov", r["nesterov"], "--model.weight_decay", r["weight_decay"]])
        single, point = scalars(run_dirs(single_root)[0]), scalars(grid_run(tmp_path / "grid", name))
        tags = ["train/loss", "val/loss", "val/acc"] if "mnist1d" in grid[1] else ["train/loss"]
        for tag in tags:
            assert [s for s, _ in single[tag]] == [s for s, _ in point[tag]] and len(point[tag]) == epochs
            assert max(abs(a - b) for (_, a), (_, b) in zip(single[tag], point[tag])) <= 1e-5, (name, tag)
        losses = point["train/loss"]
        assert losses[0][1] - losses[-1][1] > 1e-3, f"{name} did not train"


def test_a_points_numbers_do_not_depend_on_the_other_points_of_its_grid(tiny: list[str], tmp_path: Path) -> None:
    """Shares merge into the one-process sweep byte for byte only if a point's epoch loss and validation do not
    depend on which points share its grid (a mean over the points' axis rounds by a point's position in it)."""
    lrs = ["0.01", "0.02", "0.03", "0.05", "0.07", "0.1"]
    common = [*tiny, "--config", str(CONFIGS / "mnist1d.yaml"), "--data.batch_size", "16", "--momentum", "0.9",
              "--max_epochs", "2"]  # over 8 steps an epoch (4 hid it)
    whole = by_run(sweep(common, tmp_path / "whole", "--lr", *lrs))
    part = sweep(common, tmp_path / "part", "--lr", *lrs[2:])  # the same points, named in a smaller grid
    same = [{**r, "run": ""} == {**whole[spelled(r["run"])], "run": ""} for r in part]
    assert len(part) == 4 and all(same), [(r, whole[spelled(r["run"])]) for r in part]


def test_a_diverging_point_is_frozen_and_the_others_train_on_untouched(tiny: list[str], tmp_path: Path) -> None:
    alone = sweep(tiny, tmp_path / "alone", "--lr", "0.05", "--momentum", "0.9", "--max_epochs", "6")
    rows = by_run(sweep(tiny, tmp_path / "mixed", "--lr", "0.05", "1e4", "--momentum", "0.9", "--max_epochs", "6",
                        "--data.val_samples", "64"))
    bad, good = rows[spelled("lr10000_m0.9_seed0")], rows[spelled("lr0.05_m0.9_seed0")]
    assert bad["diverged_epoch"] == "0" and float(bad["final_loss"]) > 100 and good["diverged_epoch"] == ""
    assert bad["best_loss"] == "" and bad["ping_pong"] == ""  # its statistics leave out the epoch it diverged in
    assert abs(float(good["final_loss"]) - float(alone[0]["final_loss"])) <= 1e-6
    assert len(epoch_losses(grid_run(tmp_path / "mixed", "lr0.05_m0.9_seed0"))) == 6
    marked = scalars(grid_run(tmp_path / "mixed", "lr10000_m0.9_seed0"))
    assert [v for _, v in marked["train/diverged_epoch"]] == [0] and [v for _, v in marked["train/diverged"]] == [1]
    (start,) = marked["train/loss_step"]  # its step curve ends at its last step within the bound: the first one
    # no epoch within the bound: HParams reads its loss at the start (step 0, before any update), not a blown-up value
    assert start[0] == 0 and marked["train/loss"] == marked["train/loss_best"] == [start] and start[1] < 1
    assert all(v <= 100 for tag, curve in marked.items() for _, v in curve)  # nothing scales a card past the bound
    healthy = scalars(grid_run(tmp_path / "mixed", "lr0.05_m0.9_seed0"))
    assert "train/diverged_epoch" not in healthy and [v for _, v in healthy["train/diverged"]] == [0] * 6
    sessions = {}
    for run in ("lr10000_m0.9_seed0", "lr0.05_m0.9_seed0"):  # the HParams tab's Status: Failure, Success
        acc = EventAccumulator(str(grid_run(tmp_path / "mixed", run)))
        acc.Reload()
        sessions[run] = plugin_data_pb2.HParamsPluginData.FromString(
            acc.PluginTagToContent("hparams")["_hparams_/session_end_info"]).session_end_info.status
    assert sessions == {"lr10000_m0.9_seed0": api_pb2.STATUS_FAILURE, "lr0.05_m0.9_seed0": api_pb2.STATUS_SUCCESS}
    drawn = [scalars(grid_run(tmp_path / "mixed", run)) for run in sessions]
    assert all(tag in s for s in drawn for tag in HPARAMS_METRICS + VAL_METRICS)  # every view draws every point
    ckpt = load_ckpt(tmp_path / "mixed" / "last.ckpt")
    assert ckpt["state_dict"]["diverged_epoch"].tolist() == [-1, 0]
    frozen = [t[1] for t in ckpt["state_dict"].values() if t.is_floating_point()]  # the diverged point's weights
    assert frozen and all(not t.any() for t in frozen)  # stay 0 (its lr is 0); its velocity is the zero net's gradient
    assert all(torch.isfinite(s["velocity"]).all() for s in ckpt["optimizer_states"][0]["state"].values())
    assert all(torch.isfinite(t).all() for t in ckpt["state_dict"].values())


def test_a_point_diverging_late_has_its_curves_end_at_its_last_epoch_within_the_bound(tiny: list[str],
                                                                                      tmp_path: Path) -> None:
    """The bound set between a point's epoch losses, so that it diverges at a later epoch e: its curves (train/loss,
    val/loss and the rest) are the unbounded run's first e epochs, bit for bit; nothing of epoch e is logged past the
    bound, and no value is repeated as if measured. HParams reads the last values: those of epoch e - 1."""
    args = ["--lr", "0.05", "0.5", "--momentum", "0.99", "--max_epochs", "8", "--data.val_samples", "64"]
    sweep(tiny, tmp_path / "free", *args)
    free = scalars(grid_run(tmp_path / "free", "lr0.5_m0.99_seed0"))
    losses = [v for _, v in free["train/loss"]]
    e = next((e for e in range(1, 8) if losses[e] > max(losses[:e])), None)  # a first epoch above all before it
    assert e is not None, losses
    bound = (max(losses[:e]) + losses[e]) / 2
    rows = sweep(tiny, tmp_path / "bound", *args, "--bound", repr(bound))  # (lr 0.05: a point that lives on)
    assert [r["diverged_epoch"] for r in rows] == ["", str(e)]
    cut = scalars(grid_run(tmp_path / "bound", "lr0.5_m0.99_seed0"))
    for tag in ("train/loss", "train/acc", "train/loss_best", "val/loss", "val/acc", "val/acc_best"):
        assert cut[tag] == free[tag][:e], tag  # (val/acc_best last: the HParams value, from before it diverged)
    assert cut["epoch"] == free["epoch"][:e + 1]
    assert cut["train/diverged"] == [*free["train/diverged"][:e], (free["epoch"][e][0], 1.0)]
    assert cut["train/diverged_epoch"] == [(free["epoch"][e][0], float(e))]
    steps = cut["train/loss_step"]  # up to its last step within the bound, those of epoch e included
    assert steps == free["train/loss_step"][:len(steps)] and steps[-1][0] >= free["epoch"][e - 1][0]
    assert free["train/loss_step"][len(steps)][1] > bound


def test_a_grid_that_diverges_everywhere_stops_with_one_line(tiny: list[str], tmp_path: Path) -> None:
    said = refusal(sweep_main, [*tiny, "--out", str(tmp_path / "out"), "--lr", "1e4", "--momentum", "0.9"])
    assert said.startswith("error: every grid point diverged (the last at epoch 0"), said  # (exit 1)
    assert not (tmp_path / "out" / "summary.csv").exists()


def test_outputs_summary_tensorboard_hparams_seed_bands_and_figures(tiny: list[str], tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    """summary.csv against every point's curves; the HParams tab (settings that vary first, metrics that are the
    points' own curves at their last value, as summary.csv has them); seed bands of train/loss and val/acc."""
    out = tmp_path / "grid"
    epochs = 4
    sweep_main([*tiny, "--out", str(out), "--lr", "0.05", "0.5", "--momentum", "0", "0.9", "--seeds", "0", "1",
                "--max_epochs", str(epochs), "--data.val_samples", "64"])
    with open(out / "summary.csv") as f:
        reader = csv.DictReader(f)
        rows = list(reader)
    assert reader.fieldnames[: len(COLUMNS)] == COLUMNS and len(rows) == 8
    table = capsys.readouterr().out.split("best validation accuracy (best_val_acc) over the seeds")[1]
    line = next(ln for ln in table.splitlines() if ln.startswith("3_lr0.5_m0.9 ")).split()  # the figures' metric
    accs = [float(r["best_val_acc"]) for r in rows if r["run"].startswith("3_lr0.5_m0.9_")]
    assert line[1] == "2" and float(line[2]) == pytest.approx(sum(accs) / 2, abs=1e-4)
    for r in rows:
        logged = scalars(out / r["run"])
        assert len(logged["train/loss_step"]) == epochs * 4 and len(logged["train/acc"]) == epochs
        assert [v for _, v in logged["epoch"]] == list(range(epochs))  # an axis that compares batch sizes
        losses = [v for _, v in logged["train/loss"]]
        assert float(r["final_loss"]) == pytest.approx(losses[-1], rel=1e-6)
        assert float(r["best_loss"]) == pytest.approx(min(losses), rel=1e-6)
        assert [v for _, v in logged["train/loss_best"]] == [min(losses[:e + 1]) for e in range(epochs)]
        accs = [v for _, v in logged["val/acc"]]
        assert [v for _, v in logged["val/acc_best"]] == [max(accs[:e + 1]) for e in range(epochs)]
        assert float(r["best_val_acc"]) == pytest.approx(accs and max(accs), rel=1e-6)
        assert float(r["val_loss"]) == pytest.approx(logged["val/loss"][-1][1], rel=1e-6)
        assert not any(tag.startswith("hparams/") for tag in logged)  # no cards that repeat the curves
        assert not any(tag.startswith("bands/") for tag in logged)  # "Toggle all runs" draws only the bands
        acc = EventAccumulator(str(out / r["run"]))
        acc.Reload()
        start = plugin_data_pb2.HParamsPluginData.FromString(
            acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]).session_start_info
        assert start.hparams["lr"].number_value == float(r["lr"]) and start.hparams["seed"].number_value == float(
            r["seed"])
    runs = sorted([p.name for p in out.iterdir() if "_seed" in p.name] +
                  [f"seed_bands/{p.name}" for p in (out / "seed_bands").iterdir()])  # TensorBoard's run list
    momentum, seed = re.search(r"\(`(\S+)`\s+for\s+one\s+momentum,\s+`(\S+)`\s+for\s+one\s+seed\)", DOCS).groups()
    assert [n for n in runs if re.search(momentum, n)] == sorted(r["run"] for r in rows if r["momentum"] == "0.9")
    assert [n for n in runs if re.search(seed, n)] == sorted(r["run"] for r in rows if r["seed"] == "0")
    assert [n for n in runs if "seed_bands" in n] == [
        f"seed_bands/{s}" for s in ("0_lr0.05_m0", "1_lr0.05_m0.9", "2_lr0.5_m0", "3_lr0.5_m0.9")]
    _, root = sweep_experiment(out)
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        root.PluginTagToContent("hparams")["_hparams_/experiment"]).experiment
    assert [h.name for h in experiment.hparam_infos] == ["lr", "momentum", "seed"]  # what varies: all ticked
    domains = {h.name: [v.number_value for v in h.domain_discrete.values] for h in experiment.hparam_infos}
    assert domains == {k: sorted({float(r[k]) for r in rows}) for k in ("lr", "momentum", "seed")}  # filter by value
    assert [m.name.tag for m in experiment.metric_infos] == [*HPARAMS_METRICS, *VAL_METRICS]
    layout = layout_pb2.Layout.FromString(root.Tensors("custom_scalars__config__")[0].tensor_proto.string_val[0])
    charts = [chart.margin.series[0] for chart in layout.category[0].chart]
    assert [(c.value, c.lower, c.upper) for c in charts] == [BAND_TAGS, VAL_BAND_TAGS]
    for setting in ("0_lr0.05_m0", "3_lr0.5_m0.9"):  # the bands are the mean, min and max over the setting's seeds
        band = scalars(out / "seed_bands" / setting)
        for tag, name in (("train/loss", "bands/train_loss"), ("val/acc", "bands/val_acc")):  # a group apart
            seeds = [[v for _, v in scalars(out / f"{setting}_seed{s}")[tag]] for s in (0, 1)]
            for e in range(epochs):
                values = [seeds[0][e], seeds[1][e]]
                assert band[f"{name}_mean"][e][1] == pytest.approx(sum(values) / 2, rel=1e-6)
                assert band[f"{name}_min"][e][1] == min(values) and band[f"{name}_max"][e][1] == max(values)
                assert band[f"{name}_seeds"][e][1] == 2  # how many seeds the band holds
    for figure in ("phase.png", "effective_lr.png"):
        with Image.open(out / figure) as img:
            assert img.width > 400 and img.height > 300


@pytest.mark.slow
def test_killed_sweep_resumes_bit_for_bit(tiny: list[str], tmp_path: Path) -> None:
    grid = [*tiny, "--lr", "0.05", "1e4", "--momentum", "0", "0.9", "--nesterov", "false", "--max_epochs", "60",
            "--checkpoint.every_n_epochs", "2"]  # lr 1e4 diverges: the frozen points must stay frozen
    sweep_main([*grid, "--out", str(tmp_path / "straight")])  # the reference, in this process
    crashed = tmp_path / "crashed"
    kill_after_checkpoint(sweep_cmd(*grid, "--out", str(crashed)), crashed / "last.ckpt", epoch=5)
    killed_at = load_ckpt(crashed / "last.ckpt")["epoch"]
    assert not (crashed / "summary.csv").exists()
    sweep_main([*grid, "--out", str(crashed), "--ckpt_path", str(crashed / "last.ckpt")])
    a, b = load_ckpt(tmp_path / "straight" / "last.ckpt"), load_ckpt(crashed / "last.ckpt")
    assert_same_state(a, b)
    assert torch.equal(a["grid_history"], b["grid_history"]) and b["epoch"] == 59
    assert (crashed / f"resumed-from-epoch{killed_at}-step{(killed_at + 1) * 4}.ckpt").is_file()
    assert (crashed / "summary.csv").read_text() == (tmp_path / "straight" / "summary.csv").read_text()
    for run in ("1_lr0.05_m0.9_seed0", "0_lr0.05_m0_seed0", "2_lr10000_m0_seed0"):
        assert scalars(crashed / run) == scalars(tmp_path / "straight" / run), run


@pytest.mark.slow
def test_a_grid_continued_within_the_second_it_stopped_keeps_its_curves(tiny: list[str], tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """TensorBoard reads a run's event files in name order, and a continued run's restart marker drops what it finds
    before it at later steps: the continued grid's files must sort after the stopped one's even when both were made
    within one second, the continuing process's pid the lower (a notebook, a requeue)."""
    grid = [*tiny, "--lr", "0.05", "--momentum", "0.9", "--out", str(tmp_path / "grid")]
    frozen = types.SimpleNamespace(time=lambda: 1.8e9, time_ns=time.time_ns)  # every second the same second
    monkeypatch.setattr(logger, "time", frozen)
    for pid, epochs in ((99999, "2"), (1, "4")):
        monkeypatch.setattr(logger, "os", types.SimpleNamespace(getpid=lambda pid=pid: pid, replace=os.replace))
        sweep_main([*grid, "--max_epochs", epochs] + (["--ckpt_path", str(tmp_path / "grid" / "last.ckpt")]
                                                      if epochs == "4" else []))
    (run,) = [p for p in (tmp_path / "grid").iterdir() if p.name.startswith("lr")]
    assert len(list(run.glob("events.out.tfevents.*.grid"))) == 2
    curves = scalars(run)
    assert [s for s, _ in curves["train/loss_step"]] == list(range(16)), "the stopped part's curve was dropped"
    assert [s for s, _ in curves["train/loss"]] == [3, 7, 11, 15]


def test_a_checkpoint_whose_steps_lightning_counted_continues_bit_for_bit(tiny: list[str], tmp_path: Path) -> None:
    """In one process the grid takes its steps itself, several per Lightning step; under DDP, or in a checkpoint of
    a version before, Lightning took them and counted them apart. Such a checkpoint continues where it stopped
    (counted as steps, not from 0) and as the run that never stopped."""
    grid = [*tiny, "--lr", "0.05", "0.5", "--momentum", "0.9", "--lr_scheduler", "CosineAnnealingLR",
            "--lr_scheduler.T_max", "16", "--lr_scheduler_interval", "step"]
    sweep_main([*grid, "--max_epochs", "4", "--out", str(tmp_path / "straight")])
    sweep_main([*grid, "--max_epochs", "2", "--out", str(tmp_path / "continued")])
    ckpt = tmp_path / "continued" / "last.ckpt"
    state = load_ckpt(ckpt)
    loop = state["loops"]["fit_loop"]
    ours, lightnings = (loop["epoch_loop.manual_optimization.optim_step_progress"],
                        loop["epoch_loop.automatic_optimization.optim_progress"]["optimizer"]["step"])
    assert ours["total"]["completed"] == 8 and lightnings["total"]["completed"] == 0
    lightnings["total"], ours["total"] = dict(ours["total"]), {"ready": 0, "completed": 0}  # as Lightning counted
    torch.save(state, ckpt)
    sweep_main([*grid, "--max_epochs", "4", "--out", str(tmp_path / "continued"), "--ckpt_path", str(ckpt)])
    a, b = load_ckpt(tmp_path / "straight" / "last.ckpt"), load_ckpt(ckpt)
    assert_same_state(a, b)
    assert b["global_step"] == 16 and b["grid_history_steps"].tolist() == [4, 8, 12, 16]
    for run in ("0_lr0.05_m0.9_seed0", "1_lr0.5_m0.9_seed0"):
        assert scalars(tmp_path / "continued" / run) == scalars(tmp_path / "straight" / run), run


@pytest.mark.slow
def test_ddp_on_two_processes_matches_one(tiny: list[str], tmp_path: Path) -> None:
    grid = [*tiny, "--lr", "0.05", "0.5", "--momentum", "0", "0.9", "--max_epochs", "3", "--accelerator", "cpu"]
    sweep_main([*grid, "--out", str(tmp_path / "one")])  # the reference, in this process
    run_train(*grid, "--out", str(tmp_path / "two"), "--devices", "2", "--trainer.strategy", "ddp",
              "--trainer.default_root_dir", str(tmp_path), "--trainer.callbacks+=tests.ddp_probe.RankAgreement",
              cwd=tmp_path, cmd=sweep_cmd)
    probe = json.loads((tmp_path / "two" / "ddp_probe.json").read_text())  # both ranks hold the same grid
    assert probe["world_size"] == 2 and probe["buffers"] == 0.0 and probe["weights"] == 0.0
    one, two = (load_ckpt(tmp_path / d / "last.ckpt") for d in ("one", "two"))
    assert one["grid_history"].shape == two["grid_history"].shape == (3, 4)
    assert (one["grid_history"] - two["grid_history"]).abs().max() <= 1e-6
    for run in ("3_lr0.5_m0.9_seed0", "0_lr0.05_m0_seed0"):
        single, ddp = scalars(tmp_path / "one" / run), scalars(tmp_path / "two" / run)
        assert [s for s, _ in single["train/loss_step"]] == [s for s, _ in ddp["train/loss_step"]]
        assert max(abs(x - y) for (_, x), (_, y) in zip(single["train/loss_step"], ddp["train/loss_step"])) <= 1e-6


BAD_INPUT = [
    (["--lr", "--momentum", "0.9"], "--lr", "needs a value"),
    (["--lr", "-1"], "model.lr", "> 0"),
    (["--momentum", "0.5", "1.0"], "model.momentum", "[0, 1)"),
    (["--seeds", "0", "1", "0"], "--seeds", "more than once"),
    (["--beta", "0.9"], "--beta", "nrecognized"),
    (["--nesterov", "true", "--dampening", "0.1"], "nesterov", "dampening 0"),
    (["--bound", "0"], "model.bound", "> 0"),
    (["--threshold", "low"], "--threshold", "a number"),
    (["--model.optimizer", "rmsprop"], "--model.optimizer rmsprop", "no such optimizer"),
    (["--optimizer", "sgd", "Nope"], "--model.optimizer Nope", "no such optimizer"),
    (["--optimizer", "LBFGS"], "--model.optimizer LBFGS", "python train.py"),
    (["--optimizer", "Adagrad", "--momentum", "0", "0.9"], "model.momentum", "Adagrad has no momentum"),
    (["--optimizer", "RMSprop", "--optimizer.alpha", "-1"], "--model.optimizer RMSprop", "Invalid alpha"),
    (["--precision", "16-mixed"], "16-mixed", "bf16-mixed"),
    (["--trainer.gradient_clip_val", "1"], "gradient_clip_val", "not supported"),
    (["--data.dim", "200000", "--lr", "1e-3", "1e-2"], "GiB is free", "points fit"),
    (["--config", "CONFIG:model:\n  lr: []\n"], "model.lr", "at least one value"),
]


@pytest.mark.parametrize("args, option, allowed", BAD_INPUT, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_input_is_one_clear_line_and_writes_nothing(tiny: list[str], tmp_path: Path, args: list[str],
                                                       option: str, allowed: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    message = refusal(sweep_main, [*tiny, "--out", str(tmp_path / "out"), *args], tmp_path)
    assert option in message and allowed in message, message
    assert not (tmp_path / "out").exists() and not (tmp_path / "lightning_logs").exists()


def test_a_used_out_directory_is_refused_and_the_default_is_a_new_one(tiny: list[str], tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        sweep_main([*tiny, "--lr", "0.05", "--max_epochs", "1"])
    made = sorted(p.name for p in (tmp_path / "lightning_logs" / "sweep").iterdir())
    assert made == ["version_0", "version_1"]
    used = tmp_path / "lightning_logs" / "sweep" / "version_0"
    before = sorted(used.iterdir())
    message = refusal(sweep_main, [*tiny, "--lr", "0.05", "--out", str(used)])
    assert "is not empty" in message and "--ckpt_path" in message
    assert sorted(used.iterdir()) == before


def test_the_sweep_config_and_train_py_configs_parse(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """configs/sweep.yaml gives the README's grid; train.py's configs mean the same to the sweep (one point each)."""
    monkeypatch.chdir(tmp_path)
    for config, expected in (("sweep.yaml", dict(lr=[1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1.0, 10.0], seeds=[0, 1, 2])),
                             ("nesterov.yaml", dict(nesterov=True, momentum=0.9, lr=1e-5))):
        with pytest.raises(SystemExit) as exit_:
            sweep_main(["--config", str(CONFIGS / config), "--print_config"])
        assert exit_.value.code in (0, None)
        printed = yaml.safe_load(capsys.readouterr().out)["model"]
        assert {k: printed[k] for k in expected} == expected
    assert not (tmp_path / "lightning_logs").exists()


def test_checkpoints_go_back_to_the_command_that_wrote_them(tiny: list[str], tmp_path: Path) -> None:
    sweep(tiny, tmp_path / "grid", "--lr", "0.05", "--max_epochs", "1")
    train_main([*tiny, "--trainer.default_root_dir", str(tmp_path / "single"), "--max_epochs", "1"])
    single_ckpt = run_dirs(tmp_path / "single")[0] / "checkpoints" / "last.ckpt"
    message = refusal(train_main, [*tiny, "--ckpt_path", str(tmp_path / "grid" / "last.ckpt")])
    assert "python -m lit_momentum.sweep" in message
    message = refusal(sweep_main, [*tiny, "--ckpt_path", str(single_ckpt)])
    assert "continue it with python train.py" in message


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_grid_keeps_everything_on_device_without_syncs(tmp_path: Path) -> None:
    import lightning as L

    from lit_momentum.data import RandomDataModule
    from lit_momentum.sweep.grid import GridModule
    from tests.test_train import OnDeviceWithoutSyncs

    probe = OnDeviceWithoutSyncs()
    model = GridModule(dim=64, lr=[0.05, 0.5], momentum=[0, 0.9], nesterov=[False], seeds=[0, 1])
    trainer = L.Trainer(accelerator="gpu", devices=1, max_epochs=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, callbacks=[probe], default_root_dir=tmp_path)
    trainer.fit(model, datamodule=RandomDataModule(dim=64, num_samples=256))
    assert probe.steps == 2 * 4 and len(model.history) == 2


@pytest.mark.parametrize("optimizer, net", [("sgd", "MLP"), ("adam", "MLP"), ("sgd", "tests.probe_nets.BatchNormMLP")],
                         ids=["sgd", "adam", "batchnorm"])
def test_freezing_a_point_with_inf_and_nan_zeroes_it_and_leaves_the_others_bit_for_bit(optimizer: str,
                                                                                       net: str) -> None:
    """``GridModule.freeze`` on a point whose weights and buffers (BatchNorm's running statistics) went inf and whose
    optimizer state (SGD's velocity, Adam's moments) went nan: all come out 0, stay finite through further steps,
    and the other points take exactly the steps they take without the bad neighbour. (Planted: Adam's moments or
    BatchNorm's buffers left as they were make the frozen point nan or inf.)"""
    import importlib

    import lightning as L

    from lit_momentum.sweep.grid import GridModule

    module, _, name = net.rpartition(".")
    net_class = getattr(importlib.import_module(module or "lit_momentum.nets"), name)

    def grid_after(steps: int, poison: bool) -> GridModule:
        model = GridModule(dim=8, lr=[0.1, 0.5, 0.2] if optimizer == "sgd" else [1e-3, 1e-2, 3e-3], momentum=[0.9],
                           optimizer=optimizer, net=net_class)
        trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False)
        model.trainer = trainer
        opt = model.configure_optimizers()
        trainer.strategy.optimizers = [opt]
        gen = torch.Generator().manual_seed(0)
        for step in range(steps):
            x, y = torch.randn(16, 8, generator=gen), (torch.rand(16, generator=gen) > 0.5).float()
            opt.zero_grad()
            model.point_losses(model(x), y)[0].mean(1).sum().backward()
            opt.step()
            if step == 1 and poison:
                with torch.no_grad():
                    for t in [*model.parameters(), *(b for b in model.net.buffers() if b.is_floating_point())]:
                        t[1] = torch.inf
                    for v in opt.state_tensors():
                        v[1] = torch.nan
                model.freeze([1])
                assert all(not t[1].any() for t in [*model.parameters(), *model.net.buffers()])
                assert opt.state_tensors() and all(not v[1].any() for v in opt.state_tensors())
                assert model.point_settings["lr"][1] == 0 and model.diverged_epoch.tolist() == [-1, 0, -1]
        return model

    clean, frozen = grid_after(6, poison=False), grid_after(6, poison=True)
    for a, b in zip([*clean.parameters(), *clean.net.buffers()], [*frozen.parameters(), *frozen.net.buffers()]):
        assert torch.equal(a[[0, 2]], b[[0, 2]])  # the neighbours, untouched to the bit
        assert torch.isfinite(b[1].double()).all()
    assert all(not p[1].any() for p in frozen.parameters())


def test_a_panel_where_every_point_diverged_is_drawn_empty_not_a_crash(tiny: list[str], tmp_path: Path) -> None:
    """Weight decay 1e4 diverges every point of its panel in the first epoch: the sweep still exits 0 and writes
    summary.csv and both figures, the empty panel saying so (matplotlib cannot log-scale a panel with no value)."""
    out = tmp_path / "grid"
    rows = sweep(tiny, out, "--lr", "0.5", "1", "--momentum", "0", "0.9", "--weight_decay", "0", "1e4",
                 "--max_epochs", "3")
    decayed = [r for r in rows if float(r["weight_decay"]) > 0]
    assert decayed and all(r["diverged_epoch"] == "0" for r in decayed)
    assert all(r["diverged_epoch"] == "" for r in rows if float(r["weight_decay"]) == 0)
    for figure in ("phase.png", "effective_lr.png"):
        with Image.open(out / figure) as img:
            assert img.width > 800  # two panels side by side


def test_every_axis_of_the_table_reaches_every_place_that_reads_the_axes() -> None:
    """One owner for the grid's axes (``lit_momentum/sweep/axes.py``): each is GridModule's argument with the table's
    default, a GridPoint field, in the help, parsed from the command line as a grid axis, never an outer axis, a
    summary.csv column, an HParams setting, each optimizer's per-point setting where it has the axis, and a row of
    docs/sweep.md's options table. An axis added to the table and forgotten in any of them fails here."""
    import dataclasses
    import inspect

    from lit_momentum.sweep.axes import AXES_TABLE, optimizer_axes, shown
    from lit_momentum.sweep.cli import HELP, split_args
    from lit_momentum.sweep.grid import GridModule
    from lit_momentum.sweep.merge import COLUMNS
    from lit_momentum.sweep.plan import GRID_OPTIONS
    from lit_momentum.sweep.points import GridPoint

    params = inspect.signature(GridModule).parameters
    fields = [f.name for f in dataclasses.fields(GridPoint)]
    docs = (ROOT / "docs" / "sweep.md").read_text()
    axes = fields[:len(AXES_TABLE)]
    assert [a.field for a in AXES_TABLE] == axes and set(shown(adam=True)) == set(axes)
    for a in AXES_TABLE:
        assert a.name in params and (a.default is None or params[a.name].default == a.default), a.name
        assert a.field in COLUMNS and a.name in GRID_OPTIONS and f"--{a.name} V [V ...]" in HELP, a.name
        assert f"`--{a.name}`" in docs, a.name
        assert split_args([f"--{a.name}", "1", "0"])[1] == [f"--model.{a.name}=[1, 0]"], a.name
    for optimizer in ("sgd", "adam", "adamw"):
        model = GridModule(dim=4, optimizer=optimizer, momentum=0.5)
        model.configure_optimizers()
        assert set(model.point_settings) == set(optimizer_axes(optimizer)) and optimizer_axes(optimizer), optimizer
        assert {a.field for a in AXES_TABLE if optimizer in a.optimizers} - {"seed"} == set(optimizer_axes(optimizer))


def test_names_sort_as_text_in_the_numeric_order_of_what_varies() -> None:
    """TensorBoard lists runs by name, as text: typed in any order (lr 10 before 0.3), 11 seeds, a False among the
    flags, the names still sort as the numbers do, and the varying parts come first (lr is constant here); a varying
    axis is named at each of its values, zero and False included."""
    from lit_momentum.sweep.axes import AXES_TABLE
    from lit_momentum.sweep.points import make_grid

    axes = {a.name: a.default for a in AXES_TABLE} | {"lr": 0.1, "momentum": [0.99, 0.9, 0.5, 0.95],
                                                     "nesterov": [True, False], "seeds": list(range(10, -1, -1))}
    points = make_grid(**axes)
    numeric = sorted(points, key=lambda p: (p.momentum, p.nesterov, p.seed))
    assert sorted(p.name for p in points) == [p.name for p in numeric]
    assert numeric[0].name == "0_m0.5_nonesterov_lr0.1_seed00" and numeric[-1].name == "7_m0.99_nesterov_lr0.1_seed10"
    assert make_grid(**axes | {"momentum": 0.9, "nesterov": False, "seeds": 3})[0].name == "lr0.1_m0.9_seed3"
    # a varying axis is named at every value, its default too (wd0: a TensorBoard filter selects those runs)
    wd = make_grid(**axes | {"momentum": 0.9, "nesterov": False, "weight_decay": [0.0, 1e-4], "seeds": 0})
    assert [p.name for p in wd] == ["0_wd0_lr0.1_m0.9_seed0", "1_wd0.0001_lr0.1_m0.9_seed0"]


def test_event_records_are_tensorboards_byte_for_byte() -> None:
    """The grid's event files frame their records (and compute the CRCs of all at once) as TensorBoard's own
    ``RecordWriter`` does one by one: empty, short, 8-byte (a header's length) and long records, in a mixed order."""
    rng = random.Random(0)
    records = [rng.randbytes(rng.choice([0, 1, 7, 8, 9, 63, 150, 1000])) for _ in range(300)]
    ours, theirs = io.BytesIO(), io.BytesIO()
    ours.write(b"".join(framed(records)))
    writer = RecordWriter(theirs)
    for data in records:
        writer.write(data)
    assert ours.getvalue() == theirs.getvalue()
    assert framed([]) == []
