"""Ctrl-C and SIGTERM, sent for real to real processes: the run stops after the current epoch, saves ``last.ckpt``,
prints one line with the command that continues it, and exits 130 / 143; continued, it ends bit for bit where an
uninterrupted run ends. A second Ctrl-C ends the process at once and leaves the checkpoint on disk whole.

Bugs these exist to catch: a stop that loses the epoch or its checkpoint, exits 0, or prints a command that does not
continue the run; a second Ctrl-C that is ignored; Lightning's SLURM requeue broken or deadlocked by the stop
handling; a DDP rank left running.
"""

import csv
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lit_momentum.command import main as train_main
from lit_momentum.stopping import StopOnSignal
from lit_momentum.sweep import main as sweep_main
from tests.conftest import ROOT, assert_same_state, load_ckpt, run_dirs, scalars, sweep_cmd, train_cmd

FOREVER = ["--max_epochs", "100000", "--checkpoint.every_n_epochs", "100000"]  # only a stop writes a checkpoint


def epochs_logged(root: Path) -> int:
    runs = [p for p in root.rglob("events.out.tfevents.*")]
    return max((len(scalars(p.parent).get("train/loss", [])) for p in runs), default=0)


def signal_after(cmd: list[str], root: Path, sig: int, epochs: int, times: int = 1) -> subprocess.CompletedProcess:
    """Start ``cmd``, send ``sig`` (``times`` times) once ``epochs`` epochs are logged under ``root``; its result."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    try:
        while proc.poll() is None and epochs_logged(root) < epochs:
            assert time.monotonic() < deadline, f"fewer than {epochs} epochs logged in 120 s"
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        for _ in range(times):
            proc.send_signal(sig)
        out, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.mark.slow
@pytest.mark.parametrize("sig, code, name", [(signal.SIGINT, 130, "SIGINT (Ctrl-C)"), (signal.SIGTERM, 143, "SIGTERM")])
def test_a_signal_stops_after_the_epoch_and_the_run_continues_bit_for_bit(tiny: list[str], tmp_path: Path,
                                                                          sig: int, code: int, name: str) -> None:
    stopped_root = tmp_path / "stopped"
    proc = signal_after(train_cmd(*tiny, "--trainer.default_root_dir", str(stopped_root), *FOREVER), stopped_root,
                        sig, epochs=3)
    assert proc.returncode == code and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"stopped by {name} after epoch ") and "; continue with: python train.py " in last
    epoch = int(last.split("after epoch ")[1].split(";")[0]) - 1  # the bar counts from 1
    (run,) = run_dirs(stopped_root)
    ckpt = run / "checkpoints" / "last.ckpt"
    assert last.endswith(f"--ckpt_path {ckpt}") and load_ckpt(ckpt)["epoch"] == epoch >= 2
    assert len(scalars(run)["train/loss"]) == epoch + 1, "an epoch was lost or half-logged"
    # continue exactly as told (and stop 3 epochs later), against a run that was never stopped
    told = shlex.split(last.split("continue with: ")[1])[2:]
    train_main([*told, "--max_epochs", str(epoch + 4)])  # (the signal is the fault: its process was real)
    train_main([*tiny, "--trainer.default_root_dir", str(tmp_path / "straight"), "--max_epochs", str(epoch + 4)])
    (straight,) = run_dirs(tmp_path / "straight")
    assert_same_state(load_ckpt(straight / "checkpoints/last.ckpt"), load_ckpt(ckpt))
    assert scalars(straight)["train/loss_step"] == scalars(run)["train/loss_step"]


def test_a_second_ctrl_c_ends_at_once_and_the_checkpoint_on_disk_stays_whole(tiny: list[str], tmp_path: Path) -> None:
    """The second Ctrl-C arrives while the first is still waiting for its epoch to end (a probe holds the epoch open
    once the first was received): the process ends at once, by its own path (a line, exit 130), not after the epoch."""
    args = [*tiny, "--max_epochs", "100000", "--checkpoint.every_n_epochs", "1",
            "--trainer.callbacks+=tests.signal_probe.HoldAfterSignal"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.Popen(train_cmd(*args), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 120
    try:
        # 3 epochs logged: epoch 1 has ended and its checkpoint is on disk (an epoch may log before it saves)
        while proc.poll() is None and epochs_logged(tmp_path) < 3:
            assert time.monotonic() < deadline, "fewer than 3 epochs logged in 120 s"
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)  # the first: stop after this epoch
        while not (tmp_path / "signal_seen").exists():  # received, the epoch held open
            assert proc.poll() is None and time.monotonic() < deadline, "the first signal was never held"
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)  # the second: now
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == ("stopped at once by a second SIGINT (Ctrl-C); the last checkpoint on disk "
                                            "is whole")
    assert "after epoch" not in err, "it waited for the epoch's end"
    (run,) = run_dirs(tmp_path)
    ckpt = load_ckpt(run / "checkpoints" / "last.ckpt")  # loads: never half-written
    assert ckpt["epoch"] >= 1
    assert all(torch.isfinite(t).all() for k, t in ckpt["state_dict"].items() if k.startswith("net."))


@pytest.mark.slow
def test_a_stopped_sweep_says_how_to_continue_and_ends_where_a_whole_one_ends(tiny: list[str], tmp_path: Path) -> None:
    grid = [*tiny, "--lr", "0.05", "0.5", "--momentum", "0", "0.9"]
    out = tmp_path / "grid"
    proc = signal_after(sweep_cmd(*grid, "--out", str(out), *FOREVER), out, signal.SIGTERM, epochs=3)
    assert proc.returncode == 143 and not (out / "summary.csv").exists()
    last = proc.stderr.strip().splitlines()[-1]
    assert "; continue with: python -m lit_momentum.sweep " in last and last.endswith(f"--ckpt_path {out}/last.ckpt")
    epoch = int(last.split("after epoch ")[1].split(";")[0]) - 1  # the bar counts from 1
    told = shlex.split(last.split("continue with: ")[1])[3:]
    sweep_main([*told, "--max_epochs", str(epoch + 3)])
    sweep_main([*grid, "--out", str(tmp_path / "whole"), "--max_epochs", str(epoch + 3)])
    a, b = load_ckpt(tmp_path / "whole" / "last.ckpt"), load_ckpt(out / "last.ckpt")
    assert_same_state(a, b)
    assert torch.equal(a["grid_history"], b["grid_history"])
    assert (out / "summary.csv").read_text() == (tmp_path / "whole" / "summary.csv").read_text()


@pytest.mark.slow
def test_a_stopped_compare_keeps_the_finished_variants_and_names_the_missing(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    cmd = [sys.executable, "-m", "lit_momentum.compare", "--config", str(ROOT / "configs/debug.yaml"), "--variants",
           "sgd", "manual", "builtin", "--max_epochs", "30", "--out", str(out)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        while proc.poll() is None and not list(out.glob("*manual_*/version_0/events.*")):
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "Traceback" not in err
    assert err.strip().splitlines()[-1].endswith("holds sgd; missing: manual, builtin")
    with open(out / "summary.csv") as f:
        assert [r["variant"] for r in csv.DictReader(f)] == ["sgd"]


@pytest.mark.slow
def test_lightnings_slurm_requeue_signal_still_works(tiny: list[str], tmp_path: Path) -> None:
    """Under SLURM (its variables faked) SIGUSR1 still reaches Lightning's requeue handler, which saves its HPC
    checkpoint and asks SLURM to requeue the job, every time; SIGTERM still stops the run as above. ``scontrol`` is a
    stub on PATH that records its arguments: no command reaches a real SLURM controller, where one is installed."""
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "scontrol").write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.log"}\n')
    (stub / "scontrol").chmod(0o755)
    env = {**os.environ, "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "probe", "SLURM_JOB_ID": "4242", "SLURM_PROCID": "0",
           "SLURM_LOCALID": "0", "SLURM_NODEID": "0", "SLURM_NODELIST": "localhost",
           "PATH": f"{stub}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.Popen(train_cmd(*tiny, *FOREVER), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    times, deadline = 8, time.monotonic() + 120
    try:
        while proc.poll() is None and epochs_logged(tmp_path) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        for k in range(1, times + 1):  # at random points of the loop, logging included
            proc.send_signal(signal.SIGUSR1)
            while proc.poll() is None and not (tmp_path / f"hpc_ckpt_{k}.ckpt").is_file():
                assert time.monotonic() < deadline, f"no HPC checkpoint {k}: the run hangs"
                time.sleep(0.01)
            time.sleep(0.1 * k)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert err.count("requeing job 4242") == times and load_ckpt(tmp_path / f"hpc_ckpt_{times}.ckpt")["epoch"] >= 1
    assert (tmp_path / "scontrol.log").read_text().splitlines() == ["requeue 4242"] * times
    assert err.count("Requeued SLURM job: 4242") == times  # the stub answered 0: Lightning took it as done
    assert proc.returncode == 143 and err.strip().splitlines()[-1].startswith("stopped by SIGTERM after epoch ")


def test_the_requeue_handler_runs_between_steps_not_inside_the_signal() -> None:
    """Run inside the signal, Lightning's requeue handler (a checkpoint, a logger flush) deadlocked a run here when
    SIGUSR1 landed while TensorBoard's writer held its queue's lock: a rare race, so checked here directly."""
    calls: list[int] = []
    before = signal.signal(signal.SIGUSR1, lambda signum, frame: calls.append(signum))  # Lightning's, in a SLURM job
    stopper = StopOnSignal()
    try:
        stopper.on_train_start(None, None)
        os.kill(os.getpid(), signal.SIGUSR1)
        time.sleep(0.01)  # the Python-level handler has run by now
        assert calls == [], "the requeue ran inside the signal"
        stopper.on_train_batch_end(None)
        assert calls == [signal.SIGUSR1]
        stopper.on_train_batch_end(None)
        assert calls == [signal.SIGUSR1], "the requeue ran twice for one signal"
    finally:
        stopper.restore()
        signal.signal(signal.SIGUSR1, before)


def processes_with(text: str) -> list[int]:
    """Pids whose command line mentions ``text``."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text in cmdline.read_bytes().decode(errors="replace"):
                pids.append(int(cmdline.parent.name))
        except OSError:  # the process ended meanwhile
            pass
    return pids


@pytest.mark.slow
def test_a_signal_to_one_ddp_rank_stops_every_rank_at_the_same_epoch(tiny: list[str], tmp_path: Path) -> None:
    ddp = ["--trainer.strategy", "ddp", "--devices", "2", "--accelerator", "cpu"]
    proc = signal_after(train_cmd(*tiny, *ddp, *FOREVER), tmp_path, signal.SIGTERM, epochs=3)  # rank 0 only
    assert proc.returncode == 143 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    epoch = int(last.split("after epoch ")[1].split(";")[0]) - 1  # the bar counts from 1
    (run,) = run_dirs(tmp_path)
    assert load_ckpt(run / "checkpoints" / "last.ckpt")["epoch"] == epoch
    deadline = time.monotonic() + 30
    while processes_with(str(tmp_path)) and time.monotonic() < deadline:  # rank 1 ends too, on its own
        time.sleep(0.1)
    assert not processes_with(str(tmp_path)), "a rank outlived the stop"
