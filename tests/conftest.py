"""Shared fixtures: the real entry point with the real configs, shrunk (``configs/debug.yaml``) to run in seconds."""

import csv
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
TINY_DATA = "Random-dim64-num_samples256"  # the article's data as debug.yaml shrinks it, in a run's name


@pytest.fixture
def tiny(tmp_path: Path) -> list[str]:
    """Options that shrink any run to a few seconds and keep everything it writes under ``tmp_path``."""
    return ["--config", str(CONFIGS / "debug.yaml"), "--trainer.default_root_dir", str(tmp_path),
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def train_cmd(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), *args]


def sweep_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "lit_momentum.sweep", *args]


def run_train(*args: str, cwd: Path, check: bool = True, cmd: Callable[..., list[str]] = train_cmd
              ) -> subprocess.CompletedProcess:
    """Run ``python train.py ARGS`` (or another ``cmd``) as a user would, in a fresh process (``tests.*``
    importable, for probes)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(cmd(*args), cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def run_sweep(tiny: list[str], out: Path, *args: str) -> list[dict[str, str]]:
    """Run a sweep in this process; its summary.csv rows."""
    from lit_momentum.sweep import main as sweep_main

    sweep_main([*tiny, "--out", str(out), *args])
    with open(out / "summary.csv") as f:
        return list(csv.DictReader(f))


def kill_after_checkpoint(cmd: list[str], ckpt: Path, epoch: int, env: dict[str, str] | None = None) -> None:
    """Start ``cmd``, SIGKILL it once ``ckpt`` holds ``epoch`` or later, and check it really died early."""
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        while proc.poll() is None:
            if ckpt.is_file() and load_ckpt(ckpt)["epoch"] >= epoch:  # safe: checkpoints are written atomically
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        assert proc.wait(timeout=60) == -signal.SIGKILL, "the run ended before it could be killed"
    finally:
        proc.kill()


def refusal(entry: Callable[[list[str]], None], args: list[str], tmp_path: Path | None = None) -> str:
    """Run an entry point expecting it to refuse: returns its message, checked to be one ``error:`` line.
    ``--config CONFIG:<yaml>`` in ``args`` becomes a real file holding that YAML, under ``tmp_path``."""
    for i, arg in enumerate(args):
        if arg.startswith("CONFIG:") and tmp_path is not None:
            (tmp_path / "bad.yaml").write_text(arg.removeprefix("CONFIG:"))
            args = [*args[:i], str(tmp_path / "bad.yaml"), *args[i + 1:]]
    with pytest.raises(SystemExit) as exit_:
        entry(args)
    message = str(exit_.value.code)
    assert message.startswith("error: ") and "\n" not in message and "Traceback" not in message
    return message


def run_dirs(root: Path) -> list[Path]:
    """Every run directory (``lightning_logs/<variant>/version_<n>``) under ``root``."""
    return sorted(p for p in (root / "lightning_logs").glob("*/version_*") if p.is_dir())


def spelled(name: str) -> tuple[str, ...]:
    """A grid run's name as its settings, whatever their order and without the places that sort names
    (``3_lr0.1_m0_seed1`` -> ``("lr0.1", "m0", "seed1")``): tests name points by their settings."""
    return tuple(sorted(t for t in name.split("_") if not t.isdigit()))


def grid_run(root: Path, name: str) -> Path:
    """The run directory under ``root`` of the point ``name`` spells (see ``spelled``)."""
    found = [p for p in root.iterdir() if p.is_dir() and spelled(p.name) == spelled(name)]
    assert len(found) == 1, f"{name}: {[p.name for p in found]} in {root}"
    return found[0]


def by_run(rows: list[dict[str, str]]) -> dict[tuple[str, ...], dict[str, str]]:
    """summary.csv's rows by their run's settings (see ``spelled``)."""
    return {spelled(r["run"]): r for r in rows}


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Read a run's TensorBoard event files back: ``{tag: [(step, value), ...]}``."""
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def load_ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_state(a: dict, b: dict) -> None:
    """Two checkpoints hold bit-identical weights and optimizer state (velocity buffers included).

    Buffers are compared by position: the hand-written ones are named ``velocity``, SGD's ``momentum_buffer``.
    """
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key in a["state_dict"]:
        assert torch.equal(a["state_dict"][key], b["state_dict"][key]), key
    sa, sb = a["optimizer_states"][0]["state"], b["optimizer_states"][0]["state"]
    assert sa.keys() == sb.keys()
    for idx in sa:
        assert len(sa[idx]) == len(sb[idx])
        for va, vb in zip(sa[idx].values(), sb[idx].values()):
            assert torch.equal(torch.as_tensor(va), torch.as_tensor(vb)), idx


def docs_code(page: str) -> tuple[str, list[str]]:
    """The Python module and the shell commands of a docs page's example (its ```python and ```bash blocks)."""
    text = (ROOT / "docs" / page).read_text()
    module = re.search(r"```python\n(# my_nets\.py\n.*?)```", text, re.S).group(1)
    commands = [line for block in re.findall(r"```bash\n(.*?)```", text, re.S) for line in block.splitlines()
                if "my_nets" in line]
    return module, commands


def sweep_experiment(out: Path) -> tuple[Path, EventAccumulator]:
    """The one run of a sweep that holds the HParams experiment (and the custom-scalars layout), read back; the
    sweep's root holds no events (TensorBoard would list it as an empty run)."""
    assert not list(out.glob("events.out.tfevents.*")), "the root is a run of its own"
    found = []
    for run in sorted({p.parent for p in out.glob("*/events.out.tfevents.*")}):
        acc = EventAccumulator(str(run), size_guidance={"tensors": 0})
        acc.Reload()
        if "_hparams_/experiment" in acc.Tags()["tensors"]:
            found.append((run, acc))
    assert len(found) == 1, [r for r, _ in found]
    return found[0]
