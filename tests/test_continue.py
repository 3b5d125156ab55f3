"""A continued run is the run: ``python train.py --ckpt_path CKPT`` alone continues with every option the run was
started with (trainer, checkpoint interval, seed, network, data, from the checkpoint's saved config), a finished run
says so in one line, and ``--trainer.max_time`` stops a run (or a sweep's unit) short of its budget, unfinished,
for the same command to continue.

Bugs these exist to catch: the short form dropping the trainer's or the checkpoint's options (a 40-epoch run
training on towards 2000 epochs at the default interval), or the seed (another dropout stream); a config's
``max_epochs`` lost on the way; a finished run trained again silently; a ``max_time`` stop booked as a finished
unit (the same command then merges at once and trains nothing), a mid-epoch stop, or a continued run that stops at
once because the time spent before was carried over.
"""

import json
import shutil
from pathlib import Path

import pytest
import torch

from lit_momentum.command import main
from lit_momentum.stopping import EXIT_TIME
from lit_momentum.sweep import main as sweep_main
from tests.conftest import (
    assert_same_state,
    kill_after_checkpoint,
    load_ckpt,
    refusal,
    run_dirs,
    scalars,
    train_cmd,
)

RUN = "trainer:\n  max_epochs: {epochs}\ncheckpoint:\n  every_n_epochs: {every}\nseed_everything: 3\n"
DROPOUT = ["--model.net", "tests.probe_nets.DropoutMLP", "--data", "tests.probe_data.ShuffledBlobs"]
# 0.1 s an epoch: a limit of 1 s falls mid-run. (Not less: TensorBoard orders a run's event files by name, and two
# made by one process within a second are named by a counter that sorts 10 before 9; each train.py is one process.)
SLOW = ["--trainer.callbacks+=tests.probe_callbacks.SlowEpochs"]
LIMIT = ["--trainer.max_time", "00:00:00:01"]


def options(tmp_path: Path, epochs: int, every: int) -> list[str]:
    """A run whose budget, checkpoint interval and seed come from a config file; dropout and a shuffling, noising
    loader make the seed and the data stream matter."""
    (tmp_path / "run.yaml").write_text(RUN.format(epochs=epochs, every=every))
    return ["--config", str(tmp_path / "run.yaml"), *DROPOUT, "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false"]


def same_run(straight: Path, continued: Path) -> None:
    assert_same_state(load_ckpt(straight / "checkpoints/last.ckpt"), load_ckpt(continued / "checkpoints/last.ckpt"))
    a, b = scalars(straight), scalars(continued)
    for tag in ("train/loss_step", "train/loss", "val/loss", "val/acc"):
        assert a[tag] == b[tag], tag


def test_the_short_form_continues_with_every_option_the_run_had(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(tmp_path)
    main([*options(tmp_path, epochs=6, every=2), "--checkpoint.save_top_k", "-1",
          "--trainer.default_root_dir", "straight"])
    (straight,) = run_dirs(tmp_path / "straight")
    copy = tmp_path / "copy" / "lightning_logs" / straight.parent.name / "version_0"
    shutil.copytree(straight, copy)  # the run as it stood: continued from its epoch-2 checkpoint
    main(["--ckpt_path", str(copy / "checkpoints" / "epoch=1-step=16.ckpt")])
    assert load_ckpt(copy / "checkpoints" / "last.ckpt")["epoch"] == 5, "the config's 6 epochs, not 2000"
    same_run(straight, copy)
    assert sorted(p.name for p in (copy / "checkpoints").glob("epoch=*")) == [f"epoch={e}-step={8 * (e + 1)}.ckpt"
                                                                             for e in (1, 3, 5)]
    capsys.readouterr()
    with pytest.raises(SystemExit) as done:  # finished: one line, nothing trained
        main(["--ckpt_path", str(copy / "checkpoints" / "last.ckpt")])
    said = capsys.readouterr().err.strip().splitlines()
    assert done.value.code == 0 and "this run has finished its 6 epochs" in said[-1] and "--max_epochs 12" in said[-1]
    assert load_ckpt(copy / "checkpoints" / "last.ckpt")["epoch"] == 5


def test_a_checkpoint_whose_steps_lightning_counted_continues_as_the_uninterrupted_run(tmp_path: Path) -> None:
    """A run takes up to 16 steps per Lightning step (lit_momentum/steps.py), counted apart from the steps Lightning
    takes itself; a checkpoint whose steps Lightning counted (one of a version before, a DDP run's) continues from
    its step, as the run that never stopped."""
    base = options(tmp_path, epochs=4, every=1)
    main([*base, "--trainer.default_root_dir", str(tmp_path / "straight")])
    main([*base, "--trainer.default_root_dir", str(tmp_path / "stopped"), "--max_epochs", "2"])
    (straight,), (stopped,) = run_dirs(tmp_path / "straight"), run_dirs(tmp_path / "stopped")
    state = load_ckpt(stopped / "checkpoints" / "last.ckpt")
    loop = state["loops"]["fit_loop"]
    ours, lightnings = (loop["epoch_loop.manual_optimization.optim_step_progress"],
                        loop["epoch_loop.automatic_optimization.optim_progress"]["optimizer"]["step"])
    assert ours["total"]["completed"] == state["global_step"] > 0 == lightnings["total"]["completed"]
    lightnings["total"], ours["total"] = dict(ours["total"]), {"ready": 0, "completed": 0}  # as Lightning counted
    torch.save(state, stopped / "checkpoints" / "last.ckpt")
    main(["--ckpt_path", str(stopped / "checkpoints" / "last.ckpt"), "--max_epochs", "4"])
    same_run(straight, stopped)


@pytest.mark.slow
def test_a_killed_run_continued_with_the_short_form_is_the_uninterrupted_run(tmp_path: Path) -> None:
    """kill -9 mid-run, then ``python train.py --ckpt_path CKPT`` and nothing else (the config's max_epochs, the
    checkpoint interval, the seed all from the checkpoint), with a researcher's data: drawn in ``__init__`` and
    ``setup``, noise drawn in a worker process (started each epoch, seeded from the epoch's data stream)."""
    base = [*options(tmp_path, epochs=30, every=3), "--data", "tests.probe_data.DrawnAtStart", "--data.workers",
            "1"]  # data drawn in __init__ and setup, noise drawn in a worker (tests/test_faithful.py: persistent)
    main([*base, "--trainer.default_root_dir", str(tmp_path / "straight")])  # (the fault is the kill: a process)
    (straight,) = run_dirs(tmp_path / "straight")
    ckpt = tmp_path / "crash" / "lightning_logs" / straight.parent.name / "version_0" / "checkpoints" / "last.ckpt"
    kill_after_checkpoint(train_cmd(*base, "--trainer.default_root_dir", str(tmp_path / "crash")), ckpt, epoch=6)
    main(["--ckpt_path", str(ckpt)])
    same_run(straight, ckpt.parents[1])


@pytest.mark.slow
def test_max_time_stops_a_run_short_and_the_same_command_continues_it(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch,
                                                                     capsys: pytest.CaptureFixture) -> None:
    """Stopped after an epoch (exit 124, the continue command), not booked as done; continued, the time is counted
    afresh (Lightning's Timer would stop at once) until the run ends where an uninterrupted run ends."""
    monkeypatch.chdir(tmp_path)
    base = [*options(tmp_path, epochs=24, every=50), "--trainer.default_root_dir", "timed", *SLOW]
    main([*options(tmp_path, epochs=24, every=50), "--trainer.default_root_dir", "straight"])
    epochs, ckpt = [], None
    for _ in range(30):
        try:
            main([*base, *LIMIT] + (["--ckpt_path", str(ckpt)] if ckpt else []))
            break
        except SystemExit as stop:
            assert stop.code == EXIT_TIME, stop.code
        said = capsys.readouterr().err.strip().splitlines()[-1]
        (run,) = run_dirs(tmp_path / "timed")
        ckpt = run / "checkpoints" / "last.ckpt"
        epochs.append(load_ckpt(ckpt)["epoch"])
        assert said.startswith("stopped by --trainer.max_time 00:00:00:01 after epoch ")
        assert Path(said.rpartition("--ckpt_path ")[2]).resolve() == ckpt.resolve()
        assert len(epochs) == 1 or epochs[-1] > epochs[-2], "a continued run must train (its time counted afresh)"
    assert len(epochs) >= 2, "the time limit should stop the run twice (24 epochs of at least 0.1 s)"
    same_run(run_dirs(tmp_path / "straight")[0], run_dirs(tmp_path / "timed")[0])


@pytest.mark.slow
def test_a_sweep_unit_stopped_by_max_time_stays_unfinished_and_the_same_command_continues_it(
        tiny: list[str], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Continued by the same command, or by ``--ckpt_path CKPT`` alone (the plan keeps the sweep's command), in turn;
    once finished, the short form says so in one line and trains nothing."""
    out = tmp_path / "grid"
    command = [*tiny, "--out", str(out), "--lr", "0.1", "0.3", "--momentum", "0", "0.9", "--max_epochs", "24",
               *LIMIT, *SLOW]
    short = ["--ckpt_path", str(out / "last.ckpt")]
    stops = 0
    for _ in range(30):
        try:
            sweep_main(short if stops % 2 else command)
            break
        except SystemExit as stop:
            assert stop.code == EXIT_TIME, stop.code
            stops += 1
            assert not (out / "result.json").exists() and not (out / "summary.csv").exists()
    assert stops >= 2, "the time limit should stop the sweep twice (24 epochs of at least 0.1 s): both forms"
    result = json.loads((out / "result.json").read_text())
    assert result["budget"] == [24, -1] and load_ckpt(out / "last.ckpt")["epoch"] == 23
    assert len(load_ckpt(out / "last.ckpt")["grid_history"]) == 24
    capsys.readouterr()
    sweep_main(short)
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert "this sweep has finished its 24 epochs" in said and "--max_epochs 48" in said
    assert load_ckpt(out / "last.ckpt")["epoch"] == 23


def test_a_bad_time_limit_is_one_line_and_the_sweep_writes_nothing(tiny: list[str], tmp_path: Path) -> None:
    message = refusal(sweep_main, [*tiny, "--lr", "0.1", "--trainer.max_time", "1:50", "--out", str(tmp_path / "o")])
    assert "--trainer.max_time 1:50: must be DD:HH:MM:SS" in message and not (tmp_path / "o").exists()
