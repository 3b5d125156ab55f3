"""Seconds per epoch per model: an N-point grid (``python -m lit_momentum.sweep``) against one bare PyTorch loop.

    python benchmarks/grid_time.py                              # N = 1, 8, 32 at dim 1000 and 250, CPU
    python benchmarks/grid_time.py --accelerator gpu --json grid.json
    python benchmarks/grid_time.py --vs-train 300               # a 16-point sweep against 16 train.py runs, wall time
    python benchmarks/grid_time.py --dims mnist1d cnn --n 8 32 128  # configs/mnist1d.yaml's MLP, configs/cnn.yaml's CNN

Contenders, each on the same data, for the same epochs:
- ``grid/sweep``: the grid exactly as the sweep builds it (``SweepCLI``: its TensorBoard runs, checkpoint, bar);
- ``grid/loop``: the same batched model (``GridModule``'s network: hand-batched products for the MLP, ``torch.func``
  for any other) and ``GridSGD`` in a plain loop, no Lightning, with the same per-step loss and accuracy sums and
  the same validation every epoch where the data has a validation split: what is the grid's own cost;
- ``grid/vmap``: that loop with the MLP run through ``torch.func`` like any other network (for the CNN it is the
  loop): what the MLP's hand-batched products save.
After every epoch of a contender a bare single-model epoch runs (``epoch_time.Bare``); ``x bare per model`` is the
median of ``(grid epoch / N) / bare epoch`` over those pairs. Every (dim, N) runs in a fresh process, so its peak
memory (RSS on CPU, ``max_memory_allocated`` on a GPU, above the bare loop's) is its own; ``MB per point`` is the
growth over the smallest N.
"""

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from epoch_time import Bare, PairedClock, Workload  # noqa: E402

from lit_momentum.arguments import expand_aliases  # noqa: E402
from lit_momentum.cli import build  # noqa: E402
from lit_momentum.sweep.cli import SweepCLI, split_args  # noqa: E402
from lit_momentum.sweep.grid import GridModule  # noqa: E402


def lrs(n: int) -> list[str]:
    return [f"{1e-5 * (k + 1):.6g}" for k in range(n)]  # N distinct points, all well-behaved


def grid_loop(w: Workload, device: torch.device, n: int, epochs: int, bare: Bare,
              vmap: bool = False) -> list[tuple[float, float]]:
    """The batched model and GridSGD without Lightning: index batches, one sync per epoch (and per validation).
    ``vmap``: the MLP through torch.func like any other network, not by its hand-batched products."""
    dm = w.dm
    model = GridModule(dim=dm.dim, num_classes=dm.num_classes, **w.model, lr=[float(v) for v in lrs(n)],
                       momentum=0.9).to(device)
    model.net.mlp = model.net.mlp and not vmap
    opt = model.configure_optimizers()
    x, y = (t.to(device) for t in dm.splits["train"])
    val = [t.to(device) for t in dm.splits["val"]] if "val" in dm.splits else None
    pairs = []
    for epoch in range(epochs):
        start = time.perf_counter()
        total, right = torch.zeros(n, device=device), torch.zeros(n, device=device, dtype=torch.long)
        gen = torch.Generator().manual_seed(epoch)
        for idx in torch.randperm(len(x), generator=gen).to(device).split(dm.batch_size):
            losses, correct = model.point_losses(model(x[idx]), y[idx])
            losses = losses.mean(1)  # (N,)
            opt.zero_grad()
            losses.sum().backward()
            opt.step()
            total += losses.detach()
            right += correct.sum(1)
        torch.cat([total, right.double()]).tolist()
        if val is not None:  # as the sweep validates: every point over the shared batches, summed on the device
            model.eval()
            sums = []
            with torch.no_grad():
                for vx, vy in zip(val[0].split(dm.eval_batch_size), val[1].split(dm.eval_batch_size)):
                    losses, correct = model.point_losses(model(vx), vy)
                    sums.append(torch.stack([losses.sum(1), correct.sum(1).to(losses.dtype)]))  # (2, N)
            torch.stack(sums).sum(0).tolist()
            model.train()
        pairs.append((time.perf_counter() - start, bare.epoch()))
    return pairs


def grid_sweep(w: Workload, device: torch.device, n: int, epochs: int, bare: Bare) -> list[tuple[float, float]]:
    """The grid as ``python -m lit_momentum.sweep`` builds it, in a temporary directory."""
    clock = PairedClock(bare)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "grid"
        args = [*w.args, "--lr", *lrs(n), "--momentum", "0.9", "--accelerator", device.type, "--max_epochs",
                str(epochs), "--trainer.enable_model_summary", "false"]
        cli, _ = build(SweepCLI, expand_aliases(split_args(args)[1]), out=out)
        out.mkdir()
        cli.trainer.callbacks.append(clock)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return clock.pairs


def grid_loop_vmap(w: Workload, device: torch.device, n: int, epochs: int, bare: Bare) -> list[tuple[float, float]]:
    return grid_loop(w, device, n, epochs, bare, vmap=True)


CONTENDERS = {"grid/sweep": grid_sweep, "grid/loop": grid_loop, "grid/vmap": grid_loop_vmap}


def one(dim: str, n: int, name: str, epochs: int, warmup: int, device: torch.device) -> dict:
    """One contender at one size (``dim``: the article's model at that width, ``mnist1d`` or ``cnn``), alone in this
    process: its paired ratios and its peak memory above the bare loop's (RSS on CPU, allocated memory on a GPU)."""
    w = Workload.make(dim if dim in ("mnist1d", "cnn") else "article", int(dim) if dim.isdigit() else 0, 64)
    bare = Bare(w, device)
    bare.epoch()
    base = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    torch.manual_seed(0)
    pairs = CONTENDERS[name](w, device, n, epochs, bare)[warmup:]
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return dict(seconds=statistics.median(t for t, _ in pairs), bare_seconds=statistics.median(b for _, b in pairs),
                x_bare_per_model=statistics.median(t / n / b for t, b in pairs), peak_mb=(peak - base) / 2**20)


def vs_train(epochs: int) -> dict:
    """Wall time of a 16-point sweep against the same 16 settings run one after another with train.py.

    The machine's speed drifts within minutes, so the two are interleaved: a sweep, then half of the train.py runs,
    a sweep again, then the other half. Each half is paired with the sweep just before it."""
    settings = [(lr, m) for lr in ("1e-5", "1e-4", "1e-3", "1e-2") for m in ("0", "0.5", "0.9", "0.99")]
    root = Path(__file__).resolve().parents[1]
    sweeps, runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for half, chunk in enumerate((settings[:8], settings[8:])):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "lit_momentum.sweep", "--lr", "1e-5", "1e-4", "1e-3", "1e-2",
                            "--momentum", "0", "0.5", "0.9", "0.99", "--max_epochs", str(epochs),
                            "--out", f"{tmp}/grid{half}", "--trainer.enable_progress_bar", "false"],
                           check=True, capture_output=True, cwd=root)
            sweeps.append(time.perf_counter() - start)
            start = time.perf_counter()
            for lr, m in chunk:
                subprocess.run([sys.executable, "train.py", "--model.lr", lr, "--model.momentum", m, "--max_epochs",
                                str(epochs), "--model.momentum_impl", "manual", "--trainer.default_root_dir", tmp,
                                "--trainer.enable_progress_bar", "false"], check=True, capture_output=True, cwd=root)
            runs.append(time.perf_counter() - start)
    ratios = [s / (2 * r) for s, r in zip(sweeps, runs)]  # each half: 8 runs stand for 16
    return dict(epochs=epochs, sweep_s=sweeps, train_py_s=sum(runs), half_ratios=ratios,
                ratio=statistics.mean(sweeps) / sum(runs))


def print_ratios(results: list[dict]) -> None:
    """Per size: the sweep's cost per model over the plain loop's (what Lightning and the sweep's logging add), and
    the MLP's loop through vmap over its hand-batched loop (what the hand-batched products save)."""
    cost = {(r["dim"], r["n"], r["contender"]): r["x_bare_per_model"] for r in results}
    print(f"\n{'dim':>7}{'N':>5}{'sweep / loop':>14}{'vmap / loop':>13}")
    for dim, n in dict.fromkeys((r["dim"], r["n"]) for r in results):
        loop = cost.get((dim, n, "grid/loop"))
        ratios = [cost[dim, n, c] / loop if loop and (dim, n, c) in cost else float("nan")
                  for c in ("grid/sweep", "grid/vmap")]
        print(f"{dim!s:>7}{n:>5}{ratios[0]:>14.2f}{ratios[1]:>13.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", nargs="+", default=["1000", "250"],
                        help="the article's model at these widths, and/or mnist1d (configs/mnist1d.yaml's MLP), "
                             "cnn (configs/cnn.yaml's CNN)")
    parser.add_argument("--n", type=int, nargs="+", default=[1, 8, 32], help="grid sizes")
    parser.add_argument("--epochs", type=int, default=25, help="epochs per contender, warm-up included")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--accelerator", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--vs-train", type=int, metavar="EPOCHS", help="only the sweep-against-train.py wall time")
    parser.add_argument("--json", help="save the numbers here")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)  # internal: DIM N CONTENDER, JSON out
    args = parser.parse_args()
    if not 0 <= args.warmup < args.epochs:
        parser.error(f"--warmup must be >= 0 and below --epochs; got --warmup {args.warmup} --epochs {args.epochs}")
    if min(args.n) < 1 or not all(d in ("mnist1d", "cnn") or d.isdigit() and int(d) >= 2 for d in args.dims):
        parser.error("--n must be >= 1 and --dims integers >= 2, mnist1d or cnn")
    if args.accelerator == "gpu" and not torch.cuda.is_available():
        parser.error("--accelerator gpu: no GPU is available here (allowed: cpu)")
    device = torch.device("cuda" if args.accelerator == "gpu" else "cpu")
    if args.one:
        dim, n, name = args.one
        print(json.dumps(one(dim, int(n), name, args.epochs, args.warmup, device)))
        return
    if args.vs_train:
        result = vs_train(args.vs_train)
        print(f"16 settings x {result['epochs']} epochs: sweeps {result['sweep_s'][0]:.0f} s and "
              f"{result['sweep_s'][1]:.0f} s, 16 train.py runs {result['train_py_s']:.0f} s; ratio "
              f"{result['ratio']:.2f} (halves {result['half_ratios'][0]:.2f}, {result['half_ratios'][1]:.2f})")
        results = [result]
    else:
        results = []
        print(f"{'dim':>7}{'N':>4}{'contender':>12}{'x bare per model':>18}{'bare s/epoch':>14}{'peak MB':>9}"
              f"{'MB per point':>14}")
        for dim in args.dims:
            for name in [c for c in CONTENDERS if not (c == "grid/vmap" and dim == "cnn")]:  # the CNN's loop is vmap
                first = None
                for n in args.n:
                    cmd = [sys.executable, __file__, "--one", str(dim), str(n), name, "--epochs", str(args.epochs),
                           "--warmup", str(args.warmup), "--accelerator", args.accelerator]
                    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
                    measured = json.loads(proc.stdout.splitlines()[-1])
                    r = dict(dim=int(dim) if dim.isdigit() else dim, n=n, contender=name, device=device.type,
                             **measured)
                    first = first or r
                    growth = (r["peak_mb"] - first["peak_mb"]) / (n - first["n"]) if n > first["n"] else float("nan")
                    print(f"{dim:>7}{n:>4}{name:>12}{r['x_bare_per_model']:>18.2f}{r['bare_seconds']:>14.4f}"
                          f"{r['peak_mb']:>9.0f}{growth:>14.1f}", flush=True)
                    results.append(r)
        print_ratios(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
