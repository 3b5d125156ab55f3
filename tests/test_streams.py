"""Random numbers as functions of the seeds (``lit_momentum.streams``), each property pinned on its own: a grid point
equal to its run proves nothing when both share the same broken stream.

Bugs these exist to catch: a run's stream seeded from epoch 0 every epoch (the same dropout masks every epoch) or not
kept within an epoch (the same mask every step); the data stream seeded from epoch 0 every epoch (the same order every
epoch); the data and run streams equal when their seeds are; a loader's own generator reseeded from its current seed
(a continued run's order differs); the data module's ``seed`` ignored; a ``result.json`` written in place (a kill
mid-write leaves a file every later process dies on); the oldest checkpoint taken on a SLURM requeue.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from lit_momentum.command import main as train_main
from lit_momentum.streams import RandomStreams
from tests.conftest import ROOT, load_ckpt, run_dirs, run_sweep, scalars


def masks(streams: RandomStreams, epoch: int, steps: int = 2) -> list[torch.Tensor]:
    """Run 0's draws at ``epoch``: one per step, as dropout draws them."""
    streams.start_epoch(epoch, 0)
    out = []
    for _ in range(steps):
        with streams.run(0):
            out.append(torch.rand(16))
    return out


def test_a_runs_masks_differ_between_steps_and_epochs_and_are_its_seeds_and_epochs() -> None:
    first, second = masks(RandomStreams([3]), 0), masks(RandomStreams([3]), 1)
    assert not torch.equal(first[0], first[1]), "the run's stream must go on within an epoch"
    assert not torch.equal(first[0], second[0]), "each epoch must draw new masks"
    assert all(torch.equal(a, b) for a, b in zip(masks(RandomStreams([3]), 1), second)), "(seed, epoch) decides"
    assert not torch.equal(masks(RandomStreams([4]), 1)[0], second[0]), "each seed its own masks"


def test_the_data_stream_reshuffles_each_epoch_and_leaves_the_runs_apart() -> None:
    streams = RandomStreams([5])
    orders = []
    for epoch in (0, 1, 0):
        streams.start_epoch(epoch, 5)
        with streams.run(0):  # a forward in between does not move the data's stream
            torch.rand(3)
        orders.append(torch.randperm(50))
    assert not torch.equal(orders[0], orders[1]) and torch.equal(orders[0], orders[2])
    streams.start_epoch(0, 5)
    data = torch.rand(16)
    streams.start_epoch(0, 5)
    with streams.run(0):
        run = torch.rand(16)
    assert not torch.equal(data, run), "data seed 5 and run seed 5 must not share a stream"


def test_a_loaders_own_generator_continues_exactly() -> None:
    """DataLoader(shuffle=True, generator=g): epoch e's order is a function of g's first seed and e, so a run
    continued at epoch 1 (a new process: a new loader, g seeded as the user seeds it) shuffles as epoch 1 did."""
    def loader() -> DataLoader:
        return DataLoader(range(40), batch_size=40, shuffle=True, generator=torch.Generator().manual_seed(7))

    straight, dl = RandomStreams([0]), loader()
    orders = []
    for epoch in (0, 1, 2):
        straight.start_epoch(epoch, 0, dl)
        orders.append(next(iter(dl)))
    continued, dl = RandomStreams([0]), loader()
    continued.start_epoch(2, 0, dl)
    assert not torch.equal(orders[0], orders[1]) and torch.equal(next(iter(dl)), orders[2])


def test_the_data_modules_seed_decides_a_user_loaders_order(tmp_path: Path) -> None:
    """A plain DataLoader(shuffle=True) of a module with a ``seed`` option: its order (and noise) follow the option,
    from the first step, whatever the network's seed."""
    losses = {}
    for seed in ("1", "2", "1"):
        root = tmp_path / f"seed{seed}_{len(losses)}"
        train_main(["--data", "tests.probe_data.ShuffledBlobs", "--data.seed", seed, "--max_epochs", "1",
                    "--trainer.default_root_dir", str(root), "--trainer.enable_progress_bar", "false",
                    "--trainer.enable_model_summary", "false"])
        losses[root.name] = [v for _, v in scalars(run_dirs(root)[0])["train/loss_step"]]
    one, two, again = losses.values()
    assert one == again and one[0] != two[0]


@pytest.mark.slow
def test_a_kill_while_a_unit_writes_its_result_leaves_it_unfinished(tmp_path: Path) -> None:
    """A real SIGKILL half way through writing result.json: the unit reads as unfinished, not as a broken file."""
    from lit_momentum.sweep.merge import load_result

    code = ("import os, pathlib, signal\n"
            "from lit_momentum.sweep.merge import save_result\n"
            "def half(self, text, *args, **kwargs):\n"
            "    with open(self, 'w') as f:\n"
            "        f.write(text[: len(text) // 2]); f.flush(); os.fsync(f.fileno())\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n"
            "pathlib.Path.write_text = half\n"
            f"save_result(pathlib.Path({str(tmp_path)!r}), {{'budget': [5, -1], 'rows': [{{'run': 'x'}}] * 50}})\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == -9
    assert load_result(tmp_path) is None


def test_a_requeued_unit_continues_from_its_newest_checkpoint(tiny: list[str], tmp_path: Path) -> None:
    """last.ckpt and Lightning's hpc_ckpt_<n>.ckpt (SLURM's requeue): whichever holds more steps, either way."""
    from lit_momentum.sweep.main import newest_checkpoint

    run_sweep(tiny, tmp_path / "grid", "--lr", "0.1", "--max_epochs", "2")
    state = load_ckpt(tmp_path / "grid" / "last.ckpt")
    for newer in ("last.ckpt", "hpc_ckpt_1.ckpt"):
        home = tmp_path / newer
        home.mkdir()
        for name in ("last.ckpt", "hpc_ckpt_1.ckpt"):
            torch.save({**state, "global_step": state["global_step"] + (4 if name == newer else 0)}, home / name)
        assert newest_checkpoint(home) == home / newer
