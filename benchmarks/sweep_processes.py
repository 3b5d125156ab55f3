"""Wall time of one sweep of two grids: trained by one process, and by two processes that each train one grid
(``--share 1/2`` and ``--share 2/2`` started together, as torchrun or a SLURM array would start them).

    python benchmarks/sweep_processes.py                     # MNIST-1D, 2 batch sizes x 16 points, 20 epochs
    python benchmarks/sweep_processes.py --dim 1000          # the article's model instead (compute-bound)
    python benchmarks/sweep_processes.py --rounds 3 --json shares.json

The machine's speed drifts within minutes, so the two are interleaved, round after round, and each round's ratio
(two processes / one) is reported. The processes split the cores: one process uses them all (PyTorch's default), two
use half each (``OMP_NUM_THREADS``), as torchrun sets it. Each command also pays its start (imports, data, the plan).
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

ROOT = Path(__file__).resolve().parents[1]


def sweep_args(dim: int | None, epochs: int) -> list[str]:
    data = ["--config", str(ROOT / "configs/mnist1d.yaml")] if dim is None else ["--data.dim", str(dim)]
    return [sys.executable, "-m", "lit_momentum.sweep", *data, "--lr", "0.01", "0.02", "0.05", "0.1",
            "--momentum", "0", "0.5", "0.9", "0.99", "--data.batch_size", "32", "128", "--max_epochs", str(epochs),
            "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def timed(commands: list[list[str]], threads: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    procs = [subprocess.Popen(c, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
             for c in commands]
    for p in procs:
        _, err = p.communicate()
        if p.returncode:
            sys.exit(f"error: a sweep failed:\n{err[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, help="the article's model at this width (default: MNIST-1D's MLP)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", help="save the numbers here")
    args = parser.parse_args()
    if args.epochs < 1 or args.rounds < 1 or (args.dim is not None and args.dim < 2):
        parser.error("--epochs and --rounds must be >= 1, --dim >= 2")
    cores = os.cpu_count() or 1
    one, two = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            base = sweep_args(args.dim, args.epochs)
            one.append(timed([[*base, "--out", f"{tmp}/one{r}"]], cores))
            two.append(timed([[*base, "--out", f"{tmp}/two{r}", "--share", f"{k}/2"] for k in (1, 2)],
                             max(1, cores // 2)))
            print(f"round {r + 1}: one process {one[-1]:.1f} s, two processes {two[-1]:.1f} s, "
                  f"ratio {two[-1] / one[-1]:.2f}", flush=True)
            same = Path(f"{tmp}/one{r}/summary.csv").read_text() == Path(f"{tmp}/two{r}/summary.csv").read_text()
            print(f"         summary.csv of the two the same: {same}", flush=True)
    ratios = [b / a for a, b in zip(one, two)]
    print(f"two processes take {statistics.median(ratios):.2f} of one process's wall time (median of "
          f"{len(ratios)} rounds, {cores} cores)")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(dim=args.dim, epochs=args.epochs, cores=cores, one_s=one,
                                                   two_s=two, ratios=ratios), indent=2))


if __name__ == "__main__":
    main()
