"""Train several variants on the very same data and initial weights, and put them side by side.

    python -m lit_momentum.compare                                   # all six variants, the article's 2000 epochs
    python -m lit_momentum.compare --variants sgd manual builtin --max_epochs 300 --out runs/cmp
    python -m lit_momentum.compare --config configs/debug.yaml       # any train.py option applies to every variant

Writes to ``--out``: one TensorBoard run per variant (``tensorboard --logdir OUT`` overlays them), ``loss_curves.png``
and ``summary.csv``; prints the table and the largest |manual - builtin| epoch-loss difference.
"""

import argparse
import csv
import logging
import math
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import lightning as L  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tqdm import tqdm  # noqa: E402

from lit_momentum.cli import MomentumCLI, expand_aliases, quiet  # noqa: E402
from lit_momentum.stopping import EXIT_CODES, NAMES, StopOnSignal  # noqa: E402

ADAM_LR = 1e-3  # Adam's usual step size (configs/adam.yaml); the SGD variants share the configured lr
VARIANTS = ["sgd", "sgd_equiv", "manual", "builtin", "nesterov", "adam"]
COLUMNS = ["variant", "run", "final_loss", "best_loss", "epoch_below_threshold", "ping_pong", "tv_over_net",
           "wall_s"]


def variant_args(variant: str, lr: float, momentum: float) -> list[str]:
    """Options that turn the shared configuration into ``variant``."""
    sgd = ["--model.optimizer", "sgd", "--model.nesterov", "false", "--model.dampening", "0"]
    return {
        "sgd": [*sgd, "--model.momentum", "0"],
        # plain SGD at the step size momentum reaches on a steady slope, lr / (1 - m): bigger steps, no smoothing
        "sgd_equiv": [*sgd, "--model.momentum", "0", "--model.lr", repr(lr / (1 - momentum))],
        "manual": [*sgd, "--model.momentum_impl", "manual"],
        "builtin": [*sgd, "--model.momentum_impl", "builtin"],
        "nesterov": [*sgd, "--model.momentum_impl", "builtin", "--model.nesterov", "true"],
        "adam": ["--model.optimizer", "adam", "--model.momentum_impl", "builtin", "--model.nesterov", "false",
                 "--model.dampening", "0", "--model.lr", repr(ADAM_LR)],
    }[variant]


def epoch_losses(run_dir: str) -> list[float]:
    """``train/loss`` per epoch, read back from the run's TensorBoard events."""
    acc = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    acc.Reload()
    return [e.value for e in acc.Scalars("train/loss")]


def curve_stats(losses: list[float], threshold: float) -> dict[str, float]:
    """Final and best loss, first epoch below ``threshold``, ping-pong index and total variation / net decrease."""
    steps = [b - a for a, b in zip(losses, losses[1:])]
    net = losses[0] - losses[-1]
    below = next((i for i, v in enumerate(losses) if v < threshold), None)
    return dict(
        final_loss=losses[-1],
        best_loss=min(losses),
        epoch_below_threshold=below if below is not None else "",
        ping_pong=sum(d > 0 for d in steps) / max(len(steps), 1),  # share of epochs whose loss rose
        tv_over_net=sum(abs(d) for d in steps) / net if net > 0 else math.inf,  # 1.0 = a straight descent
    )


def plot(curves: dict[str, list[float]], out: Path, window: int = 100) -> None:
    """Three panels: the SGD variants' epoch loss, their epoch-to-epoch change over the last ``window`` epochs
    (the ping-pong), and every variant on a log scale (Adam falls orders of magnitude further)."""
    sgd_family = {k: v for k, v in curves.items() if k != "adam"}
    fig, (loss_ax, change_ax, log_ax) = plt.subplots(3, 1, figsize=(8, 10), height_ratios=[3, 2, 2])
    for name, losses in sgd_family.items():
        loss_ax.plot(losses, lw=1, label=name)
        tail = losses[-window - 1:]
        first = len(losses) - len(tail) + 1
        change_ax.plot(range(first, len(losses)), [b - a for a, b in zip(tail, tail[1:])], lw=0.9, label=name)
    for name, losses in curves.items():
        log_ax.plot(losses, lw=1, label=name)
    loss_ax.set(ylabel="train/loss (epoch mean)", title="SGD variants: same data, same initial weights")
    change_ax.axhline(0, c="k", lw=0.6)
    change_ax.set(ylabel="change from previous epoch", title=f"Ping-pong: last {window} epochs (above 0: worse)")
    log_ax.set(xlabel="epoch", ylabel="train/loss", yscale="log", title="Every variant, log scale")
    for ax in (loss_ax, change_ax, log_ax):
        ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


class EpochTicker(L.Callback):
    """Advances the job's one progress bar by an epoch."""

    def __init__(self, bar: tqdm) -> None:
        self.bar = bar

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.bar.update(1)


def write(rows: list[dict], curves: dict[str, list[float]], out: Path) -> None:
    """summary.csv and loss_curves.png for the variants in ``rows``."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    if curves:
        plot(curves, out / "loss_curves.png")


def main(argv: list[str] | None = None) -> None:
    quiet()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Every other option is train.py's (python train.py --help).")
    parser.add_argument("--variants", nargs="+", default=VARIANTS, metavar="NAME",
                        help=f"from {', '.join(VARIANTS)} (default: all)")
    parser.add_argument("--out", type=Path, default=Path("lightning_logs/compare"), help="output directory")
    parser.add_argument("--threshold", type=float, default=0.69, help="loss for the 'epoch below' column")
    own, shared = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    unknown = [v for v in own.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)}; allowed: {', '.join(VARIANTS)}")
    if (own.out / "summary.csv").exists():
        parser.error(f"--out {own.out} already holds a comparison: choose another directory")
    # one progress display for the whole job (below), so no bar and no model summary per variant
    shared = [*expand_aliases(shared), "--trainer.default_root_dir", str(own.out), "--trainer.enable_progress_bar",
              "false", "--trainer.enable_model_summary", "false"]
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.seed"):
        logging.getLogger(name).setLevel(logging.WARNING)  # "Seed set", "GPU available", ... once per variant: noise
    try:  # build every variant first (each seeded alike: same initial weights), so bad input stops all of them
        base = MomentumCLI(shared, resume=None).config.model
        clis = {v: MomentumCLI([*shared, *variant_args(v, base.lr, base.momentum)], resume=None)
                for v in own.variants}
    except ValueError as err:
        sys.exit(f"error: {err}")

    rows, curves = [], {}
    job = StopOnSignal()  # a signal between two variants' training stops the job too
    job.install()
    epochs = sum(cli.trainer.max_epochs for cli in clis.values())
    with tqdm(total=epochs, desc="compare", unit="epoch", dynamic_ncols=True) as bar:
        for variant, cli in clis.items():
            if job.signum is None:
                bar.set_postfix_str(variant)
                cli.trainer.callbacks.append(EpochTicker(bar))
                start = time.perf_counter()
                cli.trainer.fit(cli.model, datamodule=cli.datamodule)
                if not cli.stopper.stopped_early(cli.trainer):  # finished
                    curves[variant] = epoch_losses(cli.trainer.logger.log_dir)
                    rows.append(dict(variant=variant, run=cli.model.run_name, wall_s=time.perf_counter() - start,
                                     **curve_stats(curves[variant], own.threshold)))
            signum = job.signum or cli.stopper.signum
            if signum is not None:  # Ctrl-C or SIGTERM: keep what is finished, say what is not
                bar.close()
                write(rows, curves, own.out)
                missing = [v for v in clis if v not in curves]
                print(f"stopped by {NAMES[signum]} during {variant}: summary.csv in {own.out} holds "
                      f"{', '.join(curves) or 'no variant'}; missing: {', '.join(missing) or 'none'}", file=sys.stderr)
                sys.exit(EXIT_CODES[signum])
    job.restore()
    write(rows, curves, own.out)
    print(f"\n{'variant':<10}{'final':>9}{'best':>9}{'below':>7}{'ping-pong':>11}{'TV/net':>9}{'wall s':>9}")
    for r in rows:
        print(f"{r['variant']:<10}{r['final_loss']:>9.4f}{r['best_loss']:>9.4f}{r['epoch_below_threshold']!s:>7}"
              f"{r['ping_pong']:>11.3f}{r['tv_over_net']:>9.2f}{r['wall_s']:>9.1f}")
    if "manual" in curves and "builtin" in curves:
        gap = max(abs(a - b) for a, b in zip(curves["manual"], curves["builtin"]))
        print(f"largest |manual - builtin| epoch-loss difference: {gap:.3g}")
    print(f"\nloss_curves.png and summary.csv in {own.out}\nview with: tensorboard --logdir {own.out}")


if __name__ == "__main__":
    main()
