"""What a run prints: the model summary with its FLOPs, one progress display, the closing lines, a user's own
messages, and not the messages nobody can act on (Lightning's cloud-logger tip, a deprecation warning raised inside
Lightning, its "Seed set to 0"). The control run, without the entry point's filter, shows that those are really
printed. A refusal is one line, nothing before it; a sweep of several grids notes the devices once.

Bugs these exist to catch: noise filtered too widely (a user's own warnings gone) or not at all; a progress bar's
redraws in a batch job's log; no bar at a terminal; metric objects listed as layers in the model summary.
"""

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from tests.conftest import CONFIGS, ROOT, run_train, train_cmd

NOISE = ["litlogger", "LeafSpec", "Seed set to", "already configured"]
OWN = ["a user's own warning", "a user's own rank-zero warning", "a user's own info"]


def output(tmp_path: Path, probe: bool = False) -> str:
    tmp_path.mkdir()
    args = ["--config", str(CONFIGS / "debug.yaml"), "--trainer.default_root_dir", str(tmp_path),
            "--trainer.callbacks+=tests.terminal_probe.OwnMessages"]
    cmd = (lambda *a: [sys.executable, str(ROOT / "tests/terminal_probe.py"), *a]) if probe else None
    proc = run_train(*args, cwd=tmp_path, **({"cmd": cmd} if cmd else {}))
    return proc.stdout + proc.stderr


def test_a_run_prints_the_summary_its_bar_and_where_things_are_and_no_noise(tmp_path: Path) -> None:
    text = output(tmp_path / "quiet")
    assert not [n for n in NOISE if n in text], text
    assert all(own in text for own in OWN), text
    flops = re.search(r"^\s*([\d.]+ [KMG]?)\s+Total Flops$", text, re.M)
    assert flops and float(flops.group(1).split()[0]) > 0, "FLOPs column missing or zero"
    assert text.count("Total params") == 1  # one summary
    table = text[text.index("| Name"):text.index("Trainable params")]  # the network's layers, no metric objects
    assert re.search(r"^0 \| net +\| MLP ", table, re.M) and not re.search(r"Accuracy|MaxMetric|Metric", table), table
    assert "already configured with model summary" not in text
    # the output is a file here (captured), as in a batch job's log: progress as plain lines, no bar's redraws
    assert "\r" not in text and re.search(r"^epoch 5/5 \(\d+ s\): train/loss [\d.]+ train/acc [\d.]+$", text, re.M)
    assert re.search(r"^logs: .*\n^checkpoint: .*last\.ckpt\n^view with: +tensorboard --logdir ", text, re.M)


def test_in_a_terminal_the_progress_is_a_bar(tmp_path: Path) -> None:
    """Under a pseudo-terminal (as a user at a shell) the same run draws tqdm's bar instead of lines."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))  # a terminal 120 columns wide
    cmd = train_cmd("--config", str(CONFIGS / "debug.yaml"), "--trainer.default_root_dir", str(tmp_path))
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdin=terminal, stdout=terminal, stderr=terminal, close_fds=True)
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the run ended and closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=120) == 0
    text = b"".join(chunks).decode(errors="replace")
    assert "\r" in text and "Epoch 4: 100%" in text and not re.search(r"^epoch \d+/5 ", text, re.M)


@pytest.mark.slow
def test_without_the_filter_lightning_prints_both_messages(tmp_path: Path) -> None:
    text = output(tmp_path / "loud", probe=True)
    assert all(n in text for n in NOISE) and all(own in text for own in OWN)


@pytest.mark.slow
def test_a_refusal_is_exactly_one_line_and_device_notes_come_once(tmp_path: Path) -> None:
    proc = run_train("--model.momentum", "1.5", cwd=tmp_path, check=False)
    assert proc.returncode == 1 and proc.stderr == "error: model.momentum must be in [0, 1), got 1.5\n", proc.stderr
    proc = run_train("--config", str(CONFIGS / "debug.yaml"), "--lr", "0.1", "--data.batch_size", "32", "64",
                     "--max_epochs", "1", "--out", str(tmp_path / "grid"), cwd=tmp_path,
                     cmd=lambda *a: [sys.executable, "-m", "lit_momentum.sweep", *a])
    assert (proc.stdout + proc.stderr).count("GPU available") == 1  # two grids, two Trainers, one note


def test_a_run_logged_to_csv_does_not_point_to_tensorboard(tiny: list[str], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    from lit_momentum.command import main as train_main

    train_main([*tiny, "--max_epochs", "1", "--trainer.logger", "CSVLogger", "--trainer.logger.save_dir",
                str(tmp_path / "csv")])
    text = capsys.readouterr().out
    assert re.search(r"^logs: .*csv", text, re.M) and "tensorboard" not in text
    assert list((tmp_path / "csv").rglob("metrics.csv"))
