"""Seconds per epoch: the template's Trainer against a bare PyTorch loop and the article's loop.

    python benchmarks/epoch_time.py                         # dim 1000, batch 64, CPU
    python benchmarks/epoch_time.py --accelerator gpu --json bench.json
    python benchmarks/epoch_time.py --scaling               # dim {250, 1000, 2000} x batch {64, 256}

Every contender trains the same MLP on the same data for the same number of steps, in this one process; the
table gives the median seconds per epoch after warm-up and the ratios to ``bare`` and ``article``.
``lightning/barebones`` is the Trainer with every optional feature off: the least any Lightning version can cost.
"""

import argparse
import json
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from lit_momentum.cli import MomentumCLI, expand_aliases
from lit_momentum.data import RandomDataModule
from lit_momentum.model import MomentumMLP

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
VARIANTS = ["sgd", "manual", "builtin"]


def bare(dm: RandomDataModule, device: torch.device, epochs: int) -> list[float]:
    """The floor: index batches cut from the data tensor on the device, no Dataset, no Lightning."""
    model = MomentumMLP(dim=dm.hparams.dim).net.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9)
    x, y = dm.x.to(device), dm.y.to(device)
    times = []
    for epoch in range(epochs):
        start = time.perf_counter()
        gen = torch.Generator().manual_seed(epoch)
        total = torch.zeros((), device=device)
        for idx in torch.randperm(len(x), generator=gen).to(device).split(dm.hparams.batch_size):
            loss = F.binary_cross_entropy_with_logits(model(x[idx]).squeeze(-1), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.detach()
        total.item()  # one sync per epoch, as a logged epoch mean needs
        times.append(time.perf_counter() - start)
    return times


class PerSample(Dataset):
    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.x[i], self.y[i]

    def __len__(self) -> int:
        return len(self.x)


def article(dm: RandomDataModule, device: torch.device, epochs: int) -> list[float]:
    """The article's loop: per-sample Dataset, DataLoader(shuffle=True), ``.float().to(device)``, ``loss.item()``."""
    model = MomentumMLP(dim=dm.hparams.dim).net.to(device)
    opt = torch.optim.SGD(model.parameters(), lr=1e-5, momentum=0.9)
    loader = DataLoader(PerSample(dm.x, dm.y), batch_size=dm.hparams.batch_size, shuffle=True)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        total = 0.0
        for x, y in loader:
            loss = F.binary_cross_entropy_with_logits(model(x.float().to(device)), y.reshape(-1, 1).float().to(device))
            total += loss.item()
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return times


class EpochClock(L.Callback):
    """Wall time from one epoch's start to the next's: the epoch's steps plus its logging and checkpointing."""

    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.starts.append(time.perf_counter())

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.starts.append(time.perf_counter())

    def epochs(self) -> list[float]:
        return [b - a for a, b in zip(self.starts, self.starts[1:])]


def barebones(dm: RandomDataModule, device: torch.device, epochs: int) -> list[float]:
    """Lightning's floor: the same module under ``Trainer(barebones=True)``, every optional feature off (no logger,
    progress bar, checkpoint or ``self.log``), so what is left is the Trainer's loop itself."""
    clock = EpochClock()
    trainer = L.Trainer(barebones=True, max_epochs=epochs, accelerator=device.type, callbacks=[clock],
                        use_distributed_sampler=False)
    with warnings.catch_warnings():  # the module's self.log_dict is a no-op here, and says so
        warnings.filterwarnings("ignore", message=".*barebones=True")
        trainer.fit(MomentumMLP(dim=dm.hparams.dim), datamodule=RandomDataModule(**dm.hparams))
    return clock.epochs()


def template(variant: str) -> Callable[[RandomDataModule, torch.device, int], list[float]]:
    """``Trainer.fit`` as ``train.py`` builds it (its logger, progress bar and checkpoint), in a temporary dir."""

    def run(dm: RandomDataModule, device: torch.device, epochs: int) -> list[float]:
        clock = EpochClock()
        with tempfile.TemporaryDirectory() as tmp:
            args = ["--config", str(CONFIGS / f"{variant}.yaml"), "--trainer.default_root_dir", tmp,
                    "--accelerator", device.type, "--max_epochs", str(epochs), "--data.dim", str(dm.hparams.dim),
                    "--data.batch_size", str(dm.hparams.batch_size), "--trainer.enable_model_summary", "false"]
            cli = MomentumCLI(expand_aliases(args), resume=None)
            cli.trainer.callbacks.append(clock)
            cli.trainer.fit(cli.model, datamodule=cli.datamodule)
        return clock.epochs()

    return run


CONTENDERS = {"bare": bare, "article": article, "lightning/barebones": barebones,
              **{f"template/{v}": template(v) for v in VARIANTS}}


def measure(dim: int, batch_size: int, epochs: int, warmup: int, rounds: int, device: torch.device
            ) -> dict[str, float]:
    """Median epoch time of each contender, over ``rounds`` interleaved runs (forwards, then backwards, ...), so
    that a slow spell of a shared machine falls on every contender alike."""
    dm = RandomDataModule(dim=dim, batch_size=batch_size)
    times: dict[str, list[float]] = {name: [] for name in CONTENDERS}
    for r in range(rounds):
        for name in list(CONTENDERS)[:: 1 if r % 2 == 0 else -1]:
            torch.manual_seed(0)
            times[name] += CONTENDERS[name](dm, device, epochs)[warmup:]
    return {name: statistics.median(t) for name, t in times.items()}


def print_table(medians: dict[str, float], title: str) -> None:
    print(f"\n{title}\n{'contender':<21}{'s/epoch':>10}{'x bare':>9}{'x article':>11}")
    for name, sec in medians.items():
        print(f"{name:<21}{sec:>10.4f}{sec / medians['bare']:>9.2f}{sec / medians['article']:>11.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=60, help="epochs per contender, warm-up included")
    parser.add_argument("--warmup", type=int, default=10, help="epochs of each run left out of the median")
    parser.add_argument("--rounds", type=int, default=3, help="runs of every contender, interleaved")
    parser.add_argument("--accelerator", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--scaling", action="store_true", help="repeat over dim {250, 1000, 2000} x batch {64, 256}")
    parser.add_argument("--json", help="save the numbers here")
    args = parser.parse_args()
    for option, value, least in (("--dim", args.dim, 2), ("--batch-size", args.batch_size, 1),
                                 ("--rounds", args.rounds, 1)):
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
        medians = measure(dim, batch, args.epochs, args.warmup, args.rounds, device)
        runs = f"median of {args.rounds} x {args.epochs - args.warmup} epochs"
        print_table(medians, f"dim {dim}, batch {batch}, {device.type}, {runs}")
        results.append(dict(dim=dim, batch_size=batch, device=device.type, seconds_per_epoch=medians))
    if args.scaling:
        print(f"\n{'dim':>5}{'batch':>7}" + "".join(f"{n:>21}" for n in CONTENDERS if n != "bare") + "   (x bare)")
        for r in results:
            m = r["seconds_per_epoch"]
            ratios = "".join(f"{m[n] / m['bare']:>21.2f}" for n in m if n != "bare")
            print(f"{r['dim']:>5}{r['batch_size']:>7}{ratios}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
