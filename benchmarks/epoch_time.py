"""Seconds per epoch: the template's Trainer against a bare PyTorch loop and the article's loop.

    python benchmarks/epoch_time.py                         # dim 1000, batch 64, CPU
    python benchmarks/epoch_time.py --accelerator gpu --json bench.json
    python benchmarks/epoch_time.py --scaling               # dim {250, 1000, 2000} x batch {64, 256}
    python benchmarks/epoch_time.py --mnist1d               # configs/mnist1d.yaml's MLP (40-100-100-10) on MNIST-1D
    python benchmarks/epoch_time.py --cnn                   # configs/cnn.yaml's CNN on MNIST-1D

Every contender trains the same MLP on the same data for the same number of steps, in this one process. A bare epoch
runs right after each of a contender's epochs; ``x bare`` is the median of those paired ratios, so a shared machine
whose speed drifts within minutes still gives steady ratios. ``s/epoch`` is the median after warm-up.
``lightning/barebones`` is the Trainer with every optional feature off: the least any Lightning version can cost.
"""

import argparse
import functools
import json
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset

from lit_momentum.arguments import normalized
from lit_momentum.cli import MomentumCLI
from lit_momentum.data import MNIST1DDataModule, RandomDataModule, TensorDataModule
from lit_momentum.loss import loss_and_predictions
from lit_momentum.model import MomentumModule
from lit_momentum.nets import GRU1D, MLP, ConvNet1D

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
KINDS = ("mnist1d", "cnn", "gru")  # MNIST-1D workloads, by their configs
VARIANTS = ["sgd", "manual", "builtin"]


@dataclass
class Workload:
    """The data and the model every contender trains: the article's (random data, its MLP), or on MNIST-1D
    configs/mnist1d.yaml's MLP (``mnist1d``), configs/cnn.yaml's CNN (``cnn``) or configs/gru.yaml's GRU with SGD
    (``gru``)."""

    dm: TensorDataModule
    model: dict[str, Any]  # MomentumModule's options beside dim and num_classes
    args: list[str]  # the command-line options that give the same to train.py

    @staticmethod
    def make(kind: str, dim: int, batch_size: int) -> "Workload":
        """``kind``: ``article`` (at width ``dim``), or one of ``KINDS``: ``mnist1d``, ``cnn``, ``gru``."""
        nets = {"mnist1d": functools.partial(MLP, hidden=[100, 100], activation="relu"), "cnn": ConvNet1D,
                "gru": GRU1D}
        if kind in nets:
            sgd = ["--model.optimizer", "sgd"] if kind == "gru" else []  # (its config's Adam: the same SGD for all)
            return Workload(MNIST1DDataModule(batch_size=batch_size), dict(net=nets[kind]),
                            ["--config", str(CONFIGS / f"{kind}.yaml"), "--data.batch_size", str(batch_size), *sgd])
        return Workload(RandomDataModule(dim=dim, batch_size=batch_size), {},
                        ["--data.dim", str(dim), "--data.batch_size", str(batch_size)])

    def module(self, **options: Any) -> MomentumModule:
        return MomentumModule(dim=self.dm.dim, num_classes=self.dm.num_classes, **self.model, **options)


def mlp_and_sgd(w: Workload, device: torch.device) -> tuple[torch.nn.Module, torch.optim.SGD]:
    """The MLP (logits out) and built-in momentum 0.9 at lr 1e-5, for the loops written without Lightning."""
    net = w.module().net.to(device)
    return net, torch.optim.SGD(net.parameters(), lr=1e-5, momentum=0.9)


class Bare:
    """The floor: index batches cut from the data tensor on the device, no Dataset, no Lightning."""

    def __init__(self, w: Workload, device: torch.device) -> None:
        self.model, self.opt = mlp_and_sgd(w, device)
        x, y = w.dm.splits["train"]
        self.x, self.y, self.batch_size = x.to(device), y.to(device), w.dm.batch_size
        self.epochs_run = 0

    def epoch(self) -> float:
        start = time.perf_counter()
        gen = torch.Generator().manual_seed(self.epochs_run)
        total = torch.zeros((), device=self.x.device)
        for idx in torch.randperm(len(self.x), generator=gen).to(self.x.device).split(self.batch_size):
            loss = loss_and_predictions(self.model(self.x[idx]), self.y[idx])[0]
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
            total += loss.detach()
        total.item()  # one sync per epoch, as a logged epoch mean needs
        self.epochs_run += 1
        return time.perf_counter() - start


Contender = Callable[[Workload, torch.device, int, Bare], list[tuple[float, float]]]  # (its, bare) s/epoch


class PerSample(Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]

    def __len__(self) -> int:
        return len(self.x)


def article(w: Workload, device: torch.device, epochs: int, bare: Bare) -> list[tuple[float, float]]:
    """The article's loop: per-sample Dataset, DataLoader(shuffle=True), ``.float().to(device)``, ``loss.item()``."""
    model, opt = mlp_and_sgd(w, device)
    loader = DataLoader(PerSample(*w.dm.splits["train"]), batch_size=w.dm.batch_size, shuffle=True)
    pairs = []
    for _ in range(epochs):
        start = time.perf_counter()
        total = 0.0
        for x, y in loader:
            loss = loss_and_predictions(model(x.float().to(device)), y.to(device))[0]
            total += loss.item()
            opt.zero_grad()
            loss.backward()
            opt.step()
        pairs.append((time.perf_counter() - start, bare.epoch()))
    return pairs


class PairedClock(L.Callback):
    """Times every epoch of a fit, from one epoch's start to the next's (its steps, logging and checkpointing),
    and runs a bare epoch in between each two, so each epoch has a reference measured a moment later."""

    def __init__(self, bare: Bare) -> None:
        self.bare, self.start, self.pairs = bare, 0.0, []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.start:  # not the first epoch
            self.lap()
        self.start = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.lap()

    def lap(self) -> None:
        self.pairs.append((time.perf_counter() - self.start, self.bare.epoch()))


def barebones(w: Workload, device: torch.device, epochs: int, bare: Any,
              module: L.LightningModule | None = None) -> list[tuple[float, float]]:
    """Lightning's floor: the same module (``module``: another, e.g. a grid) under ``Trainer(barebones=True)``, every
    optional feature off (no logger, progress bar, checkpoint or ``self.log``), so what is left is the Trainer's loop
    itself."""
    clock = PairedClock(bare)
    trainer = L.Trainer(barebones=True, max_epochs=epochs, accelerator=device.type, callbacks=[clock],
                        use_distributed_sampler=False)
    with warnings.catch_warnings():  # the module's self.log_dict is a no-op here, and says so
        warnings.filterwarnings("ignore", message=".*barebones=True")
        trainer.fit(module or w.module(), datamodule=type(w.dm)(**w.dm.hparams))
    return clock.pairs


def template(variant: str) -> Contender:
    """``Trainer.fit`` exactly as ``train.py`` builds it (its logger, progress bar, model summary and checkpoint),
    in a temporary dir."""

    def run(w: Workload, device: torch.device, epochs: int, bare: Bare) -> list[tuple[float, float]]:
        clock = PairedClock(bare)
        with tempfile.TemporaryDirectory() as tmp:
            args = [*w.args, "--config", str(CONFIGS / f"{variant}.yaml"), "--trainer.default_root_dir", tmp,
                    "--accelerator", device.type, "--max_epochs", str(epochs), "--model.lr", "1e-5"]
            cli = MomentumCLI(normalized(args), resume=None)
            cli.trainer.callbacks.append(clock)
            cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        return clock.pairs

    return run


CONTENDERS: dict[str, Contender] = {"article": article, "lightning/barebones": barebones,
                                    **{f"template/{v}": template(v) for v in VARIANTS}}


def measure(w: Workload, epochs: int, warmup: int, device: torch.device) -> dict[str, dict[str, float]]:
    """Median seconds per epoch of every contender, and the median of its ratios to the bare epochs paired with
    its own: the machine's speed drifts within minutes, but hardly between one epoch and the next."""
    bare = Bare(w, device)
    bare_times, results = [], {}
    for name, contender in CONTENDERS.items():
        torch.manual_seed(0)
        pairs = contender(w, device, epochs, bare)[warmup:]
        bare_times += [b for _, b in pairs]
        results[name] = dict(epochs=len(pairs), seconds=statistics.median(t for t, _ in pairs),
                             x_bare=statistics.median(t / b for t, b in pairs))
    return {"bare": dict(epochs=len(bare_times), seconds=statistics.median(bare_times), x_bare=1.0), **results}


def print_table(results: dict[str, dict[str, float]], title: str) -> None:
    print(f"\n{title}\n{'contender':<21}{'s/epoch':>10}{'x bare':>9}{'x article':>11}")
    for name, r in results.items():
        print(f"{name:<21}{r['seconds']:>10.4f}{r['x_bare']:>9.2f}{r['x_bare'] / results['article']['x_bare']:>11.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=110, help="epochs per contender, warm-up included")
    parser.add_argument("--warmup", type=int, default=10, help="first epochs of each run left out of the medians")
    parser.add_argument("--accelerator", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--scaling", action="store_true", help="repeat over dim {250, 1000, 2000} x batch {64, 256}")
    parser.add_argument("--mnist1d", action="store_true", help="configs/mnist1d.yaml's model on MNIST-1D (not --dim)")
    parser.add_argument("--cnn", action="store_true", help="configs/cnn.yaml's CNN on MNIST-1D (not --dim)")
    parser.add_argument("--json", help="save the numbers here")
    args = parser.parse_args()
    for option, value, least in (("--dim", args.dim, 2), ("--batch-size", args.batch_size, 1)):
        if value < least:
            parser.error(f"{option} must be an integer >= {least}, got {value}")
    if not 0 <= args.warmup < args.epochs:
        parser.error(f"--warmup must be >= 0 and below --epochs; got --warmup {args.warmup} --epochs {args.epochs}")
    if args.accelerator == "gpu" and not torch.cuda.is_available():
        parser.error("--accelerator gpu: no GPU is available here (allowed: cpu)")
    device = torch.device("cuda" if args.accelerator == "gpu" else "cpu")
    shapes = [(d, b) for d in (250, 1000, 2000) for b in (64, 256)] if args.scaling else [(args.dim, args.batch_size)]
    results = []
    for dim, batch in shapes:
        kind = "cnn" if args.cnn else "mnist1d" if args.mnist1d else "article"
        workload = Workload.make(kind, dim, batch)
        contenders = measure(workload, args.epochs, args.warmup, device)
        what = {"cnn": "MNIST-1D, ConvNet1D", "mnist1d": "MNIST-1D, 40-100-100-10", "article": f"dim {dim}"}[kind]
        kept = args.epochs - args.warmup
        print_table(contenders, f"{what}, batch {batch}, {device.type}, median of {kept} epochs")
        results.append(dict(dim=workload.dm.dim, batch_size=batch, device=device.type, contenders=contenders))
    if args.scaling:
        print(f"\n{'dim':>5}{'batch':>7}" + "".join(f"{n:>21}" for n in CONTENDERS) + "   (x bare)")
        for r in results:
            ratios = "".join(f"{r['contenders'][n]['x_bare']:>21.2f}" for n in CONTENDERS)
            print(f"{r['dim']:>5}{r['batch_size']:>7}{ratios}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
