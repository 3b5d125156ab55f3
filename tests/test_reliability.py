"""Reliability: exact resume after a real kill, DDP on two processes, bad input, runaway losses.

Bugs these exist to catch: a resumed run that differs from a straight one (lost optimizer state, repeated or skipped
batches, duplicated TensorBoard points); a checkpoint that executes code when read; bad input that writes a
directory; a runaway loss that leaves a bad last checkpoint.
"""

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

from lit_momentum.command import main
from tests.conftest import (
    CONFIGS,
    TINY_DATA,
    assert_same_state,
    kill_after_checkpoint,
    load_ckpt,
    refusal,
    run_dirs,
    run_train,
    scalars,
    train_cmd,
)

# the optimizer states a resume must restore: hand-written velocity, SGD's momentum buffer, Adam's two moments (plain
# SGD has none, Nesterov's buffer is builtin's)
VARIANTS = ["manual", "builtin", "adam"]


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_killed_run_resumes_bit_for_bit(tiny: list[str], tmp_path: Path, variant: str) -> None:
    config = [*tiny, "--config", str(CONFIGS / f"{variant}.yaml"), "--config", str(CONFIGS / "debug.yaml"),
              "--max_epochs", "120", "--checkpoint.every_n_epochs", "2"]
    main([*config, "--trainer.default_root_dir", str(tmp_path / "straight")])  # (the fault is the kill: a process)
    crash_root = tmp_path / "crash"
    name = TINY_DATA + "_" + {"sgd": "sgd_lr1e-05", "manual": "manual_m0.9_lr1e-05", "builtin": "builtin_m0.9_lr1e-05",
                              "nesterov": "builtin_nesterov_m0.9_lr1e-05", "adam": "adam_b0.9_lr0.001"}[variant]
    ckpt = crash_root / "lightning_logs" / name / "version_0" / "checkpoints" / "last.ckpt"
    kill_after_checkpoint(train_cmd(*config, "--trainer.default_root_dir", str(crash_root)), ckpt, epoch=5)
    killed_at = load_ckpt(ckpt)["epoch"]
    main([*tiny, "--trainer.default_root_dir", str(crash_root), "--max_epochs", "120",
          "--ckpt_path", str(ckpt)])  # no config: the checkpoint's settings
    (straight,), (crashed,) = run_dirs(tmp_path / "straight"), run_dirs(crash_root)
    assert crashed == ckpt.parents[1], "the resumed run writes into the run it resumes"
    assert_same_state(load_ckpt(straight / "checkpoints/last.ckpt"), load_ckpt(ckpt))
    assert (ckpt.parent / f"resumed-from-epoch{killed_at}-step{(killed_at + 1) * 4}.ckpt").is_file()
    resumed_losses, straight_losses = scalars(crashed), scalars(straight)
    steps = [s for s, _ in resumed_losses["train/loss_step"]]
    assert steps == sorted(set(steps)), "duplicate or backward steps in TensorBoard"
    for tag in ("train/loss_step", "train/loss", "train/acc"):
        assert resumed_losses[tag] == straight_losses[tag], tag


class RunsCode:
    def __reduce__(self):  # unpickling this would run a shell command
        return (os.system, ("touch pwned",))


@pytest.mark.parametrize("case", ["missing", "truncated", "garbage", "pickled-code", "other-dim"])
def test_bad_checkpoints_are_refused_before_training(tiny: list[str], tmp_path: Path, case: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    extra = []
    if case == "missing":
        path = tmp_path / "nope.ckpt"
    elif case == "truncated":
        main([*tiny, "--max_epochs", "1"])
        (run,) = run_dirs(tmp_path)
        path = tmp_path / "half.ckpt"
        path.write_bytes((run / "checkpoints/last.ckpt").read_bytes()[:5000])
    elif case == "garbage":
        path = tmp_path / "garbage.ckpt"
        path.write_bytes(os.urandom(4096))
    elif case == "pickled-code":
        path = tmp_path / "evil.ckpt"
        torch.save({"hyper_parameters": RunsCode(), "epoch": 0}, path)
    else:
        main([*tiny, "--max_epochs", "1"])
        (run,) = run_dirs(tmp_path)
        path, extra = run / "checkpoints/last.ckpt", ["--data.dim", "32"]
    before = run_dirs(tmp_path)
    message = refusal(main, [*tiny, "--ckpt_path", str(path), *extra])
    assert ("--ckpt_path" in message) if case != "other-dim" else ("data.dim is 32" in message)
    if case == "pickled-code":
        assert "pickled code" in message
    assert not (tmp_path / "pwned").exists()
    assert run_dirs(tmp_path) == before


BAD_INPUT = [
    (["--model.momentum", "1.0"], "model.momentum", "[0, 1)"),
    (["--model.momentum", "-0.1"], "model.momentum", "[0, 1)"),
    (["--model.lr", "0"], "model.lr", "> 0"),
    (["--model.lr", "1e300"], "model.lr", "< 1e30"),
    (["--model.net.hidden", "0"], "model.net.hidden", ">= 1"),
    (["--model.dampening", "1.5"], "model.dampening", "[0, 1]"),
    (["--model.nesterov", "true", "--model.dampening", "0.1"], "model.nesterov", "dampening 0"),
    (["--model.nesterov", "true", "--model.momentum", "0"], "model.nesterov", "momentum > 0"),
    (["--model.momentum_impl", "fast"], "model.momentum_impl", "'builtin', 'manual'"),
    (["--model.optimizer", "rmsprop"], "--model.optimizer rmsprop", "no such optimizer; give sgd, adam, adamw, a"),
    (["--data.batch_size", "0"], "data.batch_size", "> 0"),
    (["--data", "MNIST1DDataModule", "--data.batch_size", "0"], "--data MNIST1DDataModule",
     "failed to start: data.batch_size must be an integer > 0, got 0"),  # the union error's inner message, as itself
    (["--data.dim", "1"], "data.dim", ">= 2"),
    (["--data.num_samples", "101"], "data.num_samples", "even"),
    (["--model.velocity", "3"], "--model.velocity", "unrecognized"),
    (["--config", "CONFIG:model:\n  bogus: 1\n"], "bogus", "'model'"),
    (["--config", "no/such.yaml"], "--config ", "no/such.yaml: no such file"),
    (["--max_epochs", "abc"], "--trainer.max_epochs abc", "must be int or null"),  # a union's inner message
    (["--precision", "15"], "--trainer.precision 15", "must be one of 32-true, 64-true, bf16-mixed, bf16-true, "),
    (["--model.lr", "abc"], "--model.lr abc", "must be float"),
    (["--devices", "x"], "--trainer.devices x", "int > 0"),  # Lightning's TypeError, not a traceback
    (["--config", "CONFIG:ckpt_path: last.ckpt\n"], "ckpt_path", "on the command line"),
    (["--trainer.max_time", "1:50"], "--trainer.max_time 1:50", "must be DD:HH:MM:SS"),  # (was a traceback)
    (["-c", "no/such.yaml"], "--config ", "no/such.yaml: no such file"),
]


@pytest.mark.parametrize("args, option, allowed", BAD_INPUT, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_input_is_one_clear_line_and_writes_nothing(tiny: list[str], tmp_path: Path, args: list[str],
                                                       option: str, allowed: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    message = refusal(main, [*tiny, *args], tmp_path)
    assert option in message and allowed in message, message
    assert "accelerator auto" not in message  # (only what was typed, or a config gave, is named)
    assert not (tmp_path / "lightning_logs").exists()


def test_runaway_loss_stops_with_epoch_step_and_lr(tiny: list[str], tmp_path: Path) -> None:
    proc = run_train(*tiny, "--model.lr", "10", "--model.weight_decay", "100", "--max_epochs", "20",
                     "--checkpoint.every_n_epochs", "1", cwd=tmp_path, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: train/loss is nan at epoch ") and ", step " in last and "(lr 10)" in last
    (run,) = run_dirs(tmp_path)
    ckpt = load_ckpt(run / "checkpoints/last.ckpt")  # the last good checkpoint, intact and finite
    bad_epoch = int(last.split("epoch ")[1].split(",")[0])
    assert ckpt["epoch"] == bad_epoch - 1
    assert all(torch.isfinite(t).all() for k, t in ckpt["state_dict"].items() if k.startswith("net."))


@pytest.mark.slow
def test_runs_started_together_get_their_own_directories(tiny: list[str], tmp_path: Path) -> None:
    procs = [subprocess.Popen(train_cmd(*tiny, "--max_epochs", "2"), cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read()
    runs = run_dirs(tmp_path)
    assert [r.name for r in runs] == ["version_0", "version_1"]
    assert all(len(list(r.glob("events.out.tfevents.*"))) == 1 and (r / "checkpoints/last.ckpt").is_file()
               for r in runs)


@pytest.mark.slow
def test_ddp_on_two_processes_matches_one(tiny: list[str], tmp_path: Path) -> None:
    common = [*tiny, "--model.momentum_impl", "manual", "--max_epochs", "3", "--accelerator", "cpu"]
    run_train(*common, "--trainer.default_root_dir", str(tmp_path / "one"), cwd=tmp_path)
    run_train(*common, "--trainer.default_root_dir", str(tmp_path / "two"), "--devices", "2",
              "--trainer.strategy", "ddp", "--trainer.callbacks+=tests.ddp_probe.RankAgreement", cwd=tmp_path)
    probe = json.loads((tmp_path / "two" / "ddp_probe.json").read_text())
    assert probe["world_size"] == 2 and probe["buffers"] == 0.0 and probe["weights"] == 0.0
    (one,), runs_two = run_dirs(tmp_path / "one"), run_dirs(tmp_path / "two")
    assert len(runs_two) == 1 and len(list(runs_two[0].glob("events.out.tfevents.*"))) == 1  # rank 0 only
    single, ddp = scalars(one)["train/loss_step"], scalars(runs_two[0])["train/loss_step"]
    assert [s for s, _ in single] == [s for s, _ in ddp] and len(single) == 3 * 4
    assert max(abs(a - b) for (_, a), (_, b) in zip(single, ddp)) < 1e-6
    ckpt_one, ckpt_two = (load_ckpt(r / "checkpoints/last.ckpt") for r in (one, runs_two[0]))
    for key, value in ckpt_one["state_dict"].items():
        torch.testing.assert_close(ckpt_two["state_dict"][key], value, rtol=1e-5, atol=1e-7)


def test_a_checkpoint_from_before_held_out_data_continues(tiny: list[str], tmp_path: Path) -> None:
    """A checkpoint of an earlier version (no data_config, no validation state, no num_classes, the MLP's hidden an
    option of the model, not of model.net; num_workers among the data's options) continues with its settings."""
    main([*tiny, "--max_epochs", "2"])
    (run,) = run_dirs(tmp_path)
    path = run / "checkpoints" / "last.ckpt"
    ckpt = load_ckpt(path)
    del ckpt["data_config"], ckpt["state_dict"]["val_acc_best.max_value"]
    ckpt["hyper_parameters"] = {**{k: v for k, v in ckpt["hyper_parameters"].items()
                                   if k not in ("num_classes", "net")}, "hidden": None}
    ckpt["datamodule_hyper_parameters"] = {"dim": 64, "num_samples": 256, "batch_size": 64, "seed": 0,
                                           "num_workers": 0}
    torch.save(ckpt, path)
    main([*tiny[2:], "--max_epochs", "3", "--ckpt_path", str(path)])  # no debug.yaml: the checkpoint's settings
    assert load_ckpt(path)["epoch"] == 2 and len(scalars(run)["train/loss"]) == 3
