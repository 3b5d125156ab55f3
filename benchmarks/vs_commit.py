"""Seconds per epoch of this checkout against another commit's engine, paired: each pair runs the same command on
both, one right after the other, in fresh processes (the order alternating), and the ratio is taken within the pair;
the median and range over the pairs. Timing one after the other would compare machines that drift by 30 % within
minutes. An epoch is timed from its start to the next one's (its steps, the per-epoch seeding, logging and
checkpointing), after ``--warmup`` epochs, by a callback both engines load (``--trainer.callbacks+=``).

    python benchmarks/vs_commit.py --commit fc2bad3                 # the dim-250 grid: 4 lr x 4 momenta x 2 seeds
    python benchmarks/vs_commit.py --commit fc2bad3 --dim 1000 --pairs 5
    python benchmarks/vs_commit.py --commit fc2bad3 --workload train --dim 1000 --threads 1   # the article's run
    python benchmarks/vs_commit.py --commit fc2bad3 --accelerator gpu          # unchanged on a GPU
    python benchmarks/vs_commit.py --commit c4468b1 --workload mnist1d_scheduled --epochs 30   # a per-step schedule
    python benchmarks/vs_commit.py --commit eee8e59 --workload grid_adam --dim 1000            # the grid with Adam

The other commit is checked out in a temporary ``git worktree`` (removed at the end) and imported from there.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L

ROOT = Path(__file__).resolve().parents[1]
CLOCK_FILE = "LIT_MOMENTUM_EPOCH_CLOCK"


class EpochClock(L.Callback):
    """Each epoch's seconds, from its start to the next one's start (the last: to the end of training), written as
    JSON to the file named by the environment variable ``LIT_MOMENTUM_EPOCH_CLOCK`` when training ends."""

    def __init__(self) -> None:
        self.last, self.laps = 0.0, []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        now = time.perf_counter()
        if self.last:
            self.laps.append(now - self.last)
        self.last = now

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.laps.append(time.perf_counter() - self.last)
        Path(os.environ[CLOCK_FILE]).write_text(json.dumps(self.laps))


def command(workload: str, dim: int, epochs: int, out: Path, accelerator: str) -> list[str]:
    """The command both engines run: the sweep's grid, or the article's ``train.py`` run; ``mnist1d``: a grid of
    configs/mnist1d.yaml's MLP (8 lr x 4 momenta, each point's curves at every step), ``mnist1d_scheduled`` the same
    with every point's lr on a per-step cosine (its ``train/lr`` and ``train/momentum`` curves too); ``grid_adam``
    the dim grid with Adam (its momenta are beta1)."""
    common = ["--max_epochs", str(epochs), "--trainer.enable_progress_bar", "false",
              "--trainer.enable_model_summary", "false", "--accelerator", accelerator,
              "--trainer.callbacks+=vs_commit.EpochClock"]
    if workload == "train":
        return ["train.py", "--data.dim", str(dim), *common, "--trainer.default_root_dir", str(out)]
    if workload.startswith("mnist1d"):
        schedule = ["--lr_scheduler", "CosineAnnealingLR", "--lr_scheduler.T_max", "1000000",
                    "--lr_scheduler_interval", "step"] if workload == "mnist1d_scheduled" else []
        return ["-m", "lit_momentum.sweep", "--config", "configs/mnist1d.yaml", *common, *schedule, "--lr", "0.001",
                "0.003", "0.01", "0.03", "0.1", "0.3", "1", "3", "--momentum", "0", "0.5", "0.9", "0.99", "--out",
                str(out)]
    adam = ["--model.optimizer", "adam"] if workload == "grid_adam" else []
    return ["-m", "lit_momentum.sweep", "--data.dim", str(dim), *common, *adam, "--lr", "1e-5", "1e-4", "1e-3",
            "1e-2", "--momentum", "0", "0.5", "0.9", "0.99", "--seeds", "0", "1", "--out", str(out)]


def seconds_per_epoch(root: Path, args: list[str], warmup: int, threads: int | None) -> float:
    """The median epoch of one run of ``args`` with the package imported from ``root``."""
    with tempfile.TemporaryDirectory() as tmp:
        clock = Path(tmp) / "laps.json"
        env = {**os.environ, CLOCK_FILE: str(clock),
               "PYTHONPATH": os.pathsep.join([str(root), str(ROOT / "benchmarks")]),
               **({"OMP_NUM_THREADS": str(threads)} if threads else {})}
        args = [str(root / a) if a == "train.py" else a.replace("OUT", tmp) for a in args]
        proc = subprocess.run([sys.executable, *args], cwd=root, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"error: {root}: {proc.stderr.strip().splitlines()[-1]}")
        laps = json.loads(clock.read_text())
    return statistics.median(laps[warmup:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commit", required=True, help="the other engine's commit (fc2bad3: before the faithful "
                                                        "grid)")
    parser.add_argument("--workload", choices=["grid", "grid_adam", "train", "mnist1d", "mnist1d_scheduled"],
                        default="grid")
    parser.add_argument("--dim", type=int, default=250, help="the article's model's input width")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for both (default: PyTorch's)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp) / "other"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "--quiet", str(other), args.commit],
                       check=True)
        try:
            run = command(args.workload, args.dim, args.epochs, Path("OUT") / "run", args.accelerator)
            threads = f", OMP_NUM_THREADS={args.threads}" if args.threads else ""
            print(f"{args.workload}, dim {args.dim}, {args.epochs} epochs, {args.accelerator}{threads}; load "
                  f"{os.getloadavg()[0]:.2f}; seconds per epoch (median after {args.warmup}), this / {args.commit}")
            ratios = []
            for pair in range(args.pairs):
                order = [("this", ROOT), (args.commit, other)][:: 1 if pair % 2 == 0 else -1]
                times = {name: seconds_per_epoch(root, run, args.warmup, args.threads) for name, root in order}
                ratios.append(times["this"] / times[args.commit])
                print(f"pair {pair + 1}: this {times['this']:.4f} s, {args.commit} {times[args.commit]:.4f} s, "
                      f"ratio {ratios[-1]:.3f}", flush=True)
            print(f"ratio: median {statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f}); load "
                  f"{os.getloadavg()[0]:.2f}")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)], check=False)


if __name__ == "__main__":
    main()
