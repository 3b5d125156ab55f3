"""Wall time of one sweep of two grids: trained by one process, and by two processes that each train one grid
(``--share 1/2`` and ``--share 2/2`` started together, as torchrun or a SLURM array would start them).

    python benchmarks/sweep_processes.py                     # MNIST-1D, 2 batch sizes x 16 points, 20 epochs
    python benchmarks/sweep_processes.py --dim 1000          # the article's model instead (compute-bound)
    python benchmarks/sweep_processes.py --rounds 3 --json shares.json

The machine's speed drifts within minutes, so the contenders are interleaved, round after round, and each round's
ratios (two processes / one) are reported. Threads: one process uses PyTorch's default (a thread per core); two
processes choose their part of the cores themselves (``lit_momentum/threads.py``, as given: no ``OMP_NUM_THREADS``);
``--default-threads`` adds two processes forced to PyTorch's default each (``OMP_NUM_THREADS`` = cores), which is
what they ran with before the choice: slow (the cores oversubscribed). Each command also pays its start (imports,
data, the plan).
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


def timed(commands: list[list[str]], threads: int | None) -> float:
    """Start the commands together; the wall time until all are done. ``threads``: ``OMP_NUM_THREADS`` for each, or
    None for none (each process chooses)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"} | {"PYTHONPATH": str(ROOT)}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
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
    parser.add_argument("--default-threads", action="store_true",
                        help="also two processes with PyTorch's default threads each (oversubscribed: slow)")
    args = parser.parse_args()
    if args.epochs < 1 or args.rounds < 1 or (args.dim is not None and args.dim < 2):
        parser.error("--epochs and --rounds must be >= 1, --dim >= 2")
    cores = os.cpu_count() or 1
    times: dict[str, list[float]] = {"one": [], "two": [], **({"two/default": []} if args.default_threads else {})}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            base = sweep_args(args.dim, args.epochs)
            for name in times:
                shares = [[]] if name == "one" else [["--share", f"{k}/2"] for k in (1, 2)]
                out = f"{tmp}/{name.replace('/', '-')}{r}"
                times[name].append(timed([[*base, "--out", out, *s] for s in shares],
                                         cores if name == "two/default" else None))
                same = Path(f"{out}/summary.csv").read_text() == Path(f"{tmp}/one{r}/summary.csv").read_text()
                print(f"round {r + 1}: {name:<12} {times[name][-1]:6.1f} s, ratio to one "
                      f"{times[name][-1] / times['one'][-1]:.2f}, summary.csv the one process's: {same}", flush=True)
    ratios = {name: [b / a for a, b in zip(times["one"], t)] for name, t in times.items() if name != "one"}
    for name, values in ratios.items():
        print(f"{name} takes {statistics.median(values):.2f} of one process's wall time (median of {len(values)} "
              f"rounds, {cores} cores, {os.getloadavg()[0]:.1f} load at the end)")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(dim=args.dim, epochs=args.epochs, cores=cores, seconds=times,
                                                   ratios=ratios), indent=2))


if __name__ == "__main__":
    main()
