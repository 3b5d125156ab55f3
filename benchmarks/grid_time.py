"""Seconds per epoch per model: an N-point grid (``python -m lit_momentum.sweep``) against one bare PyTorch loop,
and against the plain grid loop that does the same work.

    python benchmarks/grid_time.py                              # N = 1, 8, 32 at dim 1000 and 250, CPU
    python benchmarks/grid_time.py --dims 1000 mnist1d cnn --n 8 32 128                     # per model, x bare
    python benchmarks/grid_time.py --dims 1000 mnist1d cnn --n 8 32 128 --reference loop    # x the plain grid loop
    python benchmarks/grid_time.py --accelerator gpu --json grid.json
    python benchmarks/grid_time.py --vs-train 300               # a 16-point sweep against 16 train.py runs, wall time
    python benchmarks/grid_time.py --vs-train 10 --workload gru # the GRU point by point against 6 train.py runs
    python benchmarks/grid_time.py --dims cnn mnist1d --n 8 32 --contenders grid/pointwise --reference loop
    python benchmarks/grid_time.py --dims mnist1d 1000 --n 8 64 --contenders grid/sweep grid/scheduled --reference loop
    python benchmarks/grid_time.py --dims mnist1d --n 8 32 --contenders grid/adam grid/points --reference loop
    python benchmarks/grid_time.py --vs-train 100 --workload rmsprop   # RMSprop point by point against 6 runs
    python benchmarks/grid_time.py --dims gru --n 6 --contenders grid/sweep grid/in_turn --reference loop

Contenders, each on the same data, for the same epochs (``--dims``: the article's model at a width, ``mnist1d`` for
configs/mnist1d.yaml's MLP, ``cnn`` for configs/cnn.yaml's CNN, ``gru`` for configs/gru.yaml's GRU with SGD):
- ``grid/sweep``: the grid exactly as the sweep builds it (``SweepCLI``: its TensorBoard runs, checkpoint, bar);
- ``grid/loop``: the same batched model (``GridModule``'s network: hand-batched products for the MLP, ``torch.func``
  for any other) and ``GridSGD`` in a plain loop, no Lightning, with the same per-step loss and accuracy sums and
  the same validation every epoch where the data has a validation split: the fastest peer doing the same work;
- ``grid/vmap``: that loop with the MLP run through ``torch.func`` like any other network (for the CNN it is the
  loop): what the MLP's hand-batched products save;
- ``grid/quiet`` (asked for by ``--contenders``): the sweep without per-step curves and progress bar;
- ``grid/barebones`` (asked for by ``--contenders``): the sweep's module under ``Trainer(barebones=True)``,
  Lightning's floor for this loop;
- ``grid/pointwise`` (asked for by ``--contenders``): the plain grid loop on the sweep's loop path, each point's
  forward in turn (the path of what vmap cannot batch: dropout, nn.GRU), on a network vmap batches: its cost;
- ``grid/scheduled`` (asked for by ``--contenders``): the sweep with a learning-rate schedule stepped every step:
  against ``grid/sweep``, both paired with ``--reference loop``, what a schedule costs;
- ``grid/in_turn`` (asked for by ``--contenders``): the sweep with the point-by-point path's points one after
  another on the process's threads, where a network that draws nothing has them side by side on the cores (one
  thread each): on ``--dims gru``, paired with ``--reference loop`` as ``grid/sweep`` is, what side by side saves;
- ``grid/adam`` and ``grid/points`` (asked for by ``--contenders``): the sweep with Adam batched (``--optimizer
  adam``: ``GridAdam``) and with the same Adam by class path (``--optimizer torch.optim.Adam``: an instance per point,
  ``PointOptimizers``, the path of every other class); both paired with ``--reference loop``, what the general path
  costs against the batched one.
Every epoch of a contender is paired with one epoch of the reference run right after it, in the same process:
``--reference bare`` (one model's bare loop, ``epoch_time.Bare``; the ratio is per model, ``(grid epoch / N) / bare
epoch``) or ``--reference loop`` (the plain grid loop of the same N: what the sweep, vmap or logging add); the
median over the pairs after ``--warmup``. Timing one contender after another would compare machines that drift by
30 % within minutes. Every (dim, N, contender) runs in a fresh process, so its peak memory (RSS on CPU,
``max_memory_allocated`` on a GPU, above the reference's) is its own; ``MB per point`` is the growth over the
smallest N.
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
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from epoch_time import KINDS, Bare, PairedClock, Workload, barebones  # noqa: E402

from lit_momentum.arguments import normalized  # noqa: E402
from lit_momentum.command import build  # noqa: E402
from lit_momentum.sweep.cli import SweepCLI, split_args  # noqa: E402
from lit_momentum.sweep.grid import GridModule  # noqa: E402


def lrs(n: int) -> list[str]:
    return [f"{1e-5 * (k + 1):.6g}" for k in range(n)]  # N distinct points, all well-behaved


class GridLoop:
    """The batched model and GridSGD without Lightning: index batches, one sync per epoch (and per validation), the
    sweep's per-step loss and accuracy sums and its validation. ``vmap``: the MLP through torch.func like any other
    network, not by its hand-batched products. ``epoch()`` trains one epoch and returns its seconds."""

    def __init__(self, w: Workload, device: torch.device, n: int, vmap: bool = False, pointwise: bool = False
                 ) -> None:
        self.dm, self.n, self.device, self.epochs_run = w.dm, n, device, 0
        self.model = GridModule(dim=w.dm.dim, num_classes=w.dm.num_classes, **w.model,
                                lr=[float(v) for v in lrs(n)], momentum=0.9).to(device)
        if vmap and self.model.net.mode == "mlp":  # the MLP through torch.func like any other network
            self.model.net.mode = "vmap"
        if pointwise:  # the loop path (what vmap cannot batch takes), on a network vmap can batch
            self.model.net.mode = "loop"
        self.opt = self.model.configure_optimizers()
        self.x, self.y = (t.to(device) for t in w.dm.splits["train"])
        self.val = [t.to(device) for t in w.dm.splits["val"]] if "val" in w.dm.splits else None

    def epoch(self) -> float:
        model, opt, dm, n, device = self.model, self.opt, self.dm, self.n, self.device
        start = time.perf_counter()
        total, right = torch.zeros(n, device=device), torch.zeros(n, device=device, dtype=torch.long)
        gen = torch.Generator().manual_seed(self.epochs_run)
        for idx in torch.randperm(len(self.x), generator=gen).to(device).split(dm.batch_size):
            losses, correct = model.point_losses(model(self.x[idx]), self.y[idx], reduction="mean")  # (N,), (N, B)
            opt.zero_grad()
            losses.sum().backward()
            opt.step()
            total += losses.detach()
            right += correct.sum(1)
        torch.cat([total, right.double()]).tolist()
        if self.val is not None:  # as the sweep validates: every point over the shared batches, summed on the device
            model.eval()
            sums = []
            with torch.no_grad():
                for vx, vy in zip(self.val[0].split(dm.eval_batch_size), self.val[1].split(dm.eval_batch_size)):
                    losses, correct = model.point_losses(model(vx), vy)
                    sums.append(torch.stack([losses.double().sum(1), correct.sum(1).double()]))  # (2, N)
            torch.stack(sums).sum(0).tolist()
            model.train()
        self.epochs_run += 1
        return time.perf_counter() - start


def grid_loop(w: Workload, device: torch.device, n: int, epochs: int, ref: Any,
              vmap: bool = False, pointwise: bool = False) -> list[tuple[float, float]]:
    loop = GridLoop(w, device, n, vmap, pointwise)
    return [(loop.epoch(), ref.epoch()) for _ in range(epochs)]


def grid_sweep(w: Workload, device: torch.device, n: int, epochs: int, ref: Any,
               extra: tuple[str, ...] = (), in_turn: bool = False) -> list[tuple[float, float]]:
    """The grid as ``python -m lit_momentum.sweep`` builds it, in a temporary directory (``in_turn``: the
    point-by-point path's points one after another, not side by side on the cores)."""
    clock = PairedClock(ref)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "grid"
        args = [*w.args, "--lr", *lrs(n), "--momentum", "0.9", "--accelerator", device.type, "--max_epochs",
                str(epochs), "--trainer.enable_model_summary", "false", *extra]
        cli, _ = build(SweepCLI, normalized(split_args(args)[1]), out=out)
        if in_turn:
            cli.model.net.threads = None
        out.mkdir()
        cli.trainer.callbacks.append(clock)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    return clock.pairs


def grid_loop_vmap(w: Workload, device: torch.device, n: int, epochs: int, ref: Any) -> list[tuple[float, float]]:
    return grid_loop(w, device, n, epochs, ref, vmap=True)


def grid_loop_pointwise(w: Workload, device: torch.device, n: int, epochs: int, ref: Any) -> list[tuple[float, float]]:
    return grid_loop(w, device, n, epochs, ref, pointwise=True)


def grid_sweep_quiet(w: Workload, device: torch.device, n: int, epochs: int, ref: Any) -> list[tuple[float, float]]:
    """The sweep without its per-step curves (``train/loss_step`` of every point) and with no progress bar."""
    return grid_sweep(w, device, n, epochs, ref, ("--trainer.log_every_n_steps", "1000000",
                                                  "--trainer.enable_progress_bar", "false"))


def grid_sweep_scheduled(w: Workload, device: torch.device, n: int, epochs: int, ref: Any
                         ) -> list[tuple[float, float]]:
    """The sweep with every point on its own schedule, stepped every step (a cosine over 10^6 steps): its N
    schedulers, their values copied into the points' settings, and each point's ``train/lr`` and ``train/momentum``
    curves."""
    return grid_sweep(w, device, n, epochs, ref, ("--lr_scheduler", "CosineAnnealingLR", "--lr_scheduler.T_max",
                                                  "1000000", "--lr_scheduler_interval", "step"))


def grid_sweep_in_turn(w: Workload, device: torch.device, n: int, epochs: int, ref: Any
                       ) -> list[tuple[float, float]]:
    """The sweep with the point-by-point path's points in turn, each on the process's threads (as before they were
    put side by side): against ``grid/sweep`` on ``--dims gru``, what side by side saves."""
    return grid_sweep(w, device, n, epochs, ref, in_turn=True)


def grid_sweep_adam(w: Workload, device: torch.device, n: int, epochs: int, ref: Any) -> list[tuple[float, float]]:
    """The sweep with Adam, batched (``GridAdam``)."""
    return grid_sweep(w, device, n, epochs, ref, ("--model.optimizer", "adam"))


def grid_sweep_points(w: Workload, device: torch.device, n: int, epochs: int, ref: Any) -> list[tuple[float, float]]:
    """The sweep with the same Adam by class path: one ``torch.optim.Adam`` per point (``PointOptimizers``)."""
    return grid_sweep(w, device, n, epochs, ref, ("--model.optimizer", "torch.optim.Adam"))


def grid_barebones(w: Workload, device: torch.device, n: int, epochs: int, ref: Any) -> list[tuple[float, float]]:
    """Lightning's floor for the grid: the sweep's ``GridModule`` and data under ``Trainer(barebones=True)``."""
    grid = GridModule(dim=w.dm.dim, num_classes=w.dm.num_classes, **w.model, lr=[float(v) for v in lrs(n)],
                      momentum=0.9)
    return barebones(w, device, epochs, ref, grid)


CONTENDERS = {"grid/sweep": grid_sweep, "grid/loop": grid_loop, "grid/vmap": grid_loop_vmap,
              "grid/quiet": grid_sweep_quiet, "grid/barebones": grid_barebones, "grid/pointwise": grid_loop_pointwise,
              "grid/scheduled": grid_sweep_scheduled, "grid/adam": grid_sweep_adam, "grid/points": grid_sweep_points,
              "grid/in_turn": grid_sweep_in_turn}
DEFAULT_CONTENDERS = ["grid/sweep", "grid/loop", "grid/vmap"]


def one(dim: str, n: int, name: str, epochs: int, warmup: int, device: torch.device, reference: str) -> dict:
    """One contender at one size (``dim``: the article's model at that width, ``mnist1d`` or ``cnn``), alone in this
    process, each of its epochs paired with one of the reference (``bare``: one model's plain loop; ``loop``: the
    plain grid loop of the same N): the median ratio, and the peak memory above the reference's (RSS on CPU,
    allocated memory on a GPU; meaningful against ``bare`` only)."""
    w = Workload.make(dim if dim in KINDS else "article", int(dim) if dim.isdigit() else 0, 64)
    ref = Bare(w, device) if reference == "bare" else GridLoop(w, device, n)
    ref.epoch()
    base = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    torch.manual_seed(0)
    pairs = CONTENDERS[name](w, device, n, epochs, ref)[warmup:]
    peak = (torch.cuda.max_memory_allocated() if device.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    per = n if reference == "bare" else 1  # against the loop of the same N the ratio is already per model
    ratios = [t / per / r for t, r in pairs]
    return dict(seconds=statistics.median(t for t, _ in pairs), ref_seconds=statistics.median(r for _, r in pairs),
                ratio=statistics.median(ratios), low=min(ratios), high=max(ratios), peak_mb=(peak - base) / 2**20)


VS_TRAIN = {  # the grid (lrs, momenta) and the options both commands share
    "article": (("1e-5", "1e-4", "1e-3", "1e-2"), ("0", "0.5", "0.9", "0.99"), []),
    "gru": (("0.1", "0.3", "1"), ("0", "0.9"), ["--config", "configs/gru.yaml", "--model.optimizer", "sgd"]),
    "rmsprop": (("1e-4", "3e-4", "1e-3"), ("0", "0.9"), ["--config", "configs/mnist1d.yaml", "--model.optimizer",
                                                        "RMSprop"]),
}


def vs_train(epochs: int, workload: str = "article") -> dict:
    """Wall time of a sweep against the same settings run one after another with train.py: the article's model (16
    points, batched), configs/gru.yaml's GRU with SGD (6 points, trained point by point: vmap cannot batch it) or
    configs/mnist1d.yaml's MLP with RMSprop (6 points, batched network, an optimizer instance per point).

    The machine's speed drifts within minutes, so the two are interleaved: a sweep, then half of the train.py runs,
    a sweep again, then the other half. Each half is paired with the sweep just before it."""
    lr_values, momenta, shared = VS_TRAIN[workload]
    settings = [(lr, m) for lr in lr_values for m in momenta]
    half = len(settings) // 2
    root = Path(__file__).resolve().parents[1]
    sweeps, runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for part, chunk in enumerate((settings[:half], settings[half:])):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "lit_momentum.sweep", *shared, "--lr", *lr_values, "--momentum",
                            *momenta, "--max_epochs", str(epochs), "--out", f"{tmp}/grid{part}",
                            "--trainer.enable_progress_bar", "false"], check=True, capture_output=True, cwd=root)
            sweeps.append(time.perf_counter() - start)
            start = time.perf_counter()
            for lr, m in chunk:
                impl = ["--model.momentum_impl", "manual"] if workload != "rmsprop" else []  # (the grid's SGD rule)
                subprocess.run([sys.executable, "train.py", *shared, "--model.lr", lr, "--model.momentum", m,
                                "--max_epochs", str(epochs), *impl,
                                "--trainer.default_root_dir", tmp, "--trainer.enable_progress_bar", "false"],
                               check=True, capture_output=True, cwd=root)
            runs.append(time.perf_counter() - start)
    ratios = [s / (len(settings) / len(c) * r) for s, r, c in zip(sweeps, runs, (settings[:half], settings[half:]))]
    return dict(epochs=epochs, workload=workload, points=len(settings), sweep_s=sweeps, train_py_s=sum(runs),
                half_ratios=ratios, ratio=statistics.mean(sweeps) / sum(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", nargs="+", default=["1000", "250"],
                        help="the article's model at these widths, and/or mnist1d (configs/mnist1d.yaml's MLP), "
                             "cnn (configs/cnn.yaml's CNN), gru (configs/gru.yaml's GRU, with SGD)")
    parser.add_argument("--n", type=int, nargs="+", default=[1, 8, 32], help="grid sizes")
    parser.add_argument("--contenders", nargs="+", choices=list(CONTENDERS), default=DEFAULT_CONTENDERS,
                        help="grid/quiet: the sweep without per-step curves and progress bar (what they cost)")
    parser.add_argument("--reference", choices=["bare", "loop"], default="bare",
                        help="what each epoch is paired with: one model's bare loop (cost per model), or the plain "
                             "grid loop of the same N (what the sweep, vmap or logging add to it)")
    parser.add_argument("--epochs", type=int, default=25, help="epochs per contender, warm-up included")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--accelerator", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--vs-train", type=int, metavar="EPOCHS", help="only the sweep-against-train.py wall time")
    parser.add_argument("--workload", choices=list(VS_TRAIN), default="article",
                        help="with --vs-train: the article's model (batched) or the GRU (point by point)")
    parser.add_argument("--json", help="save the numbers here")
    parser.add_argument("--one", nargs=3, help=argparse.SUPPRESS)  # internal: DIM N CONTENDER, JSON out
    args = parser.parse_args()
    if not 0 <= args.warmup < args.epochs:
        parser.error(f"--warmup must be >= 0 and below --epochs; got --warmup {args.warmup} --epochs {args.epochs}")
    if min(args.n) < 1 or not all(d in KINDS or d.isdigit() and int(d) >= 2 for d in args.dims):
        parser.error(f"--n must be >= 1 and --dims integers >= 2 or one of {', '.join(KINDS)}")
    if args.accelerator == "gpu" and not torch.cuda.is_available():
        parser.error("--accelerator gpu: no GPU is available here (allowed: cpu)")
    device = torch.device("cuda" if args.accelerator == "gpu" else "cpu")
    if args.one:
        dim, n, name = args.one
        print(json.dumps(one(dim, int(n), name, args.epochs, args.warmup, device, args.reference)))
        return
    if args.vs_train:
        result = vs_train(args.vs_train, args.workload)
        print(f"{result['points']} settings x {result['epochs']} epochs: sweeps {result['sweep_s'][0]:.0f} s and "
              f"{result['sweep_s'][1]:.0f} s, {result['points']} train.py runs {result['train_py_s']:.0f} s; ratio "
              f"{result['ratio']:.2f} (halves {result['half_ratios'][0]:.2f}, {result['half_ratios'][1]:.2f})")
        results = [result]
    else:
        results = []
        what = "x bare per model" if args.reference == "bare" else "x loop (range)"
        print(f"{'dim':>7}{'N':>4}{'contender':>15}{what:>24}{'ref s/epoch':>13}{'peak MB':>9}{'MB per point':>14}")
        for dim in args.dims:
            names = [c for c in args.contenders if not (c == "grid/vmap" and dim == "cnn")]  # the CNN's loop is vmap
            for name in [c for c in names if not (c == "grid/loop" and args.reference == "loop")]:
                first = None
                for n in args.n:
                    cmd = [sys.executable, __file__, "--one", str(dim), str(n), name, "--epochs", str(args.epochs),
                           "--warmup", str(args.warmup), "--accelerator", args.accelerator, "--reference",
                           args.reference]
                    proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
                    measured = json.loads(proc.stdout.splitlines()[-1])
                    r = dict(dim=int(dim) if dim.isdigit() else dim, n=n, contender=name, device=device.type,
                             reference=args.reference, **measured)
                    first = first or r
                    growth = (r["peak_mb"] - first["peak_mb"]) / (n - first["n"]) if n > first["n"] else float("nan")
                    cell = f"{r['ratio']:.2f}" + (f" ({r['low']:.2f}-{r['high']:.2f})" if args.reference == "loop"
                                                   else "")
                    print(f"{dim:>7}{n:>4}{name:>15}{cell:>24}{r['ref_seconds']:>13.4f}{r['peak_mb']:>9.0f}"
                          f"{growth:>14.1f}", flush=True)
                    results.append(r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
