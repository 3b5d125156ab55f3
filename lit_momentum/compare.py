"""Train several variants on the very same data and initial weights, and put them side by side.

    python -m lit_momentum.compare                                   # all six variants, the article's 2000 epochs
    python -m lit_momentum.compare --variants sgd manual builtin --max_epochs 300 --out runs/cmp
    python -m lit_momentum.compare --config configs/debug.yaml       # any train.py option applies to every variant
    python -m lit_momentum.compare --config configs/mnist1d.yaml --seed_everything 1   # with validation columns

The SGD variants use ``torch.optim.SGD``'s momentum ``v = m v + g`` (dampening 0), not the article's formula
``v = m v + (1 - m) g`` (dampening = m, Adam's beta1): with it ``sgd_equiv`` would be plain SGD at the same lr
(``python -m lit_momentum.families`` draws both).

Writes to ``--out``: one TensorBoard run per variant (``tensorboard --logdir OUT`` overlays them), ``loss_curves.png``
and ``summary.csv``; prints the table and the largest |manual - builtin| epoch-loss difference.
"""

import csv
import functools
import logging
import math
import sys
import time
from argparse import ArgumentError
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities.model_helpers import is_overridden
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tqdm import tqdm

from lit_momentum.arguments import OneLineParser, normalized, one_line
from lit_momentum.cli import MomentumCLI
from lit_momentum.curves import curve_stats
from lit_momentum.epochs import NonFiniteLossError
from lit_momentum.plotting import plt
from lit_momentum.runs import check_place
from lit_momentum.stopping import EXIT_CODES, NAMES, StopOnSignal
from lit_momentum.terminal import is_terminal, quiet
from lit_momentum.threads import shared_machine

ADAM_LR = 1e-3  # Adam's usual step size (configs/adam.yaml); the SGD variants share the configured lr
VARIANTS = ["sgd", "sgd_equiv", "manual", "builtin", "nesterov", "adam"]
COLUMNS = ["variant", "run", "final_loss", "best_loss", "epoch_below_threshold", "ping_pong", "tv_over_net",
           "wall_s", "val_loss", "best_val_acc", "epoch_best_val_acc", "seed", "test_loss", "test_acc",
           "diverged_epoch"]


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


def read_run(run_dir: str) -> tuple[list[float], dict[str, float | int | str]]:
    """``train/loss`` per epoch, and the validation columns (empty without validation data), read back from the
    run's TensorBoard events. ``epoch_best_val_acc`` is the first epoch of the best ``val/acc``."""
    events = EventAccumulator(run_dir, size_guidance={"scalars": 0})
    events.Reload()
    train = events.Scalars("train/loss")
    val = {"val_loss": "", "best_val_acc": "", "epoch_best_val_acc": ""}
    if "val/acc" in events.Tags()["scalars"]:
        epoch_of = {e.step: epoch for epoch, e in enumerate(train)}  # validation is logged at its epoch's last step
        accs = events.Scalars("val/acc")
        best = max(accs, key=lambda e: e.value)
        val = {"val_loss": events.Scalars("val/loss")[-1].value, "best_val_acc": best.value,
               "epoch_best_val_acc": epoch_of[best.step]}
    return [e.value for e in train], val


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
    shown = {k: v for k, v in curves.items() if any(math.isfinite(x) and x > 0 for x in v)}
    for name, losses in shown.items():
        log_ax.plot(losses, lw=1, label=name)
    loss_ax.set(ylabel="train/loss (epoch mean)", title="SGD variants: same data, same initial weights")
    change_ax.axhline(0, c="k", lw=0.6)
    change_ax.set(ylabel="change from previous epoch", title=f"Ping-pong: last {window} epochs (above 0: worse)")
    log_ax.set(xlabel="epoch", ylabel="train/loss", title="Every variant, log scale")
    if shown:  # a variant that diverged in its first epoch has no point to draw
        log_ax.set_yscale("log")
    for ax in (loss_ax, change_ax, log_ax):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, ncol=3)
        else:
            ax.text(0.5, 0.5, "no finite loss to show: every variant diverged", ha="center", transform=ax.transAxes)
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


def build(shared: list[str], variants: list[str], seeds: list[int] | None) -> dict[tuple[str, int], MomentumCLI]:
    """Every (variant, seed) run, built before any trains, so that bad input stops all of them (one line)."""
    try:
        base = MomentumCLI(shared, resume=None, logs="").config
        runs = {}
        for seed in seeds or [base.seed_everything]:
            for v in variants:  # each seeded alike: the same initial weights
                args = [*shared, "--seed_everything", str(seed), *variant_args(v, base.model.lr, base.model.momentum)]
                runs[v, seed] = MomentumCLI(args, resume=None, logs="")  # OUT/<run>/version_<n>
    except (ValueError, ArgumentError) as err:
        sys.exit("error: " + one_line(err))
    return runs


def run(cli: MomentumCLI, variant: str, seed: int, threshold: float) -> tuple[dict, list[float]] | None:
    """Train one variant; its summary row (with test metrics when the data has a test set) and epoch losses, or
    None when a signal stopped it."""
    start = time.perf_counter()
    diverged = ""
    try:
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    except NonFiniteLossError:  # the variant's loss went inf or nan: reported, and the others still run
        diverged = cli.trainer.current_epoch
    wall = time.perf_counter() - start
    if cli.stopper.stopped_early(cli.trainer):
        return None
    losses, val = read_run(cli.trainer.logger.log_dir)
    test = {"test_loss": "", "test_acc": ""}
    if not diverged and is_overridden("test_dataloader", cli.datamodule, L.LightningDataModule):  # final weights
        (result,) = cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
        test = {"test_loss": result["test/loss"], "test_acc": result["test/acc"]}
    stats = curve_stats(losses, threshold) if losses else dict.fromkeys(
        ("final_loss", "best_loss", "epoch_below_threshold", "ping_pong", "tv_over_net"), "")
    run_dir = Path(cli.trainer.logger.log_dir)  # OUT/<run>/version_<n>
    row = dict(variant=variant, seed=seed, run=run_dir.parent.name, wall_s=wall, **stats, **val, **test,
               diverged_epoch=diverged)
    return row, losses


def mean_of(rows: list[dict], key: str) -> float | str:
    """The mean of a column over rows, "" where none has a value."""
    vals = [r[key] for r in rows if r[key] != ""]
    return sum(vals) / len(vals) if vals else ""


def print_table(rows: list[dict]) -> None:
    """A line per variant: its numbers, or over several seeds the mean of each and the range of the last column."""
    seeds = sorted({r["seed"] for r in rows})
    print(f"\n{'variant':<10}{'final':>11}{'best':>11}{'below':>7}{'ping-pong':>11}{'TV/net':>9}{'wall s':>9}"
          f"{'val loss':>10}{'best val acc':>14}{'test acc':>10}" + (f"  (mean of {len(seeds)} seeds; test acc "
                                                                   f"min-max)" if len(seeds) > 1 else ""))
    for variant in dict.fromkeys(r["variant"] for r in rows):
        rs = [r for r in rows if r["variant"] == variant]
        mean = functools.partial(mean_of, rs)
        cells = [f"{mean(k):>{w}.4g}" if mean(k) != "" else f"{'-':>{w}}" for k, w in (("final_loss", 11),
                                                                                         ("best_loss", 11))]
        below = mean("epoch_below_threshold")
        cells.append(f"{below:>7.0f}" if below != "" else f"{'never':>7}")
        cells += [f"{mean(k):>{w}.{d}f}" if mean(k) != "" else f"{'-':>{w}}" for k, w, d in (
            ("ping_pong", 11, 3), ("tv_over_net", 9, 2), ("wall_s", 9, 1), ("val_loss", 10, 4),
            ("best_val_acc", 14, 4), ("test_acc", 10, 4))]
        spread = ""
        if len(rs) > 1 and rs[0]["test_acc"] != "":
            spread = f"  {min(r['test_acc'] for r in rs):.4f}-{max(r['test_acc'] for r in rs):.4f}"
        diverged = [str(r["diverged_epoch"]) for r in rs if r.get("diverged_epoch", "") != ""]
        note = f"  diverged (epoch {', '.join(diverged)})" if diverged else ""
        print(f"{variant:<10}{''.join(cells)}{spread}{note}")  # (a number of 4 digits, 0.0008706, keeps a space)


def main(argv: list[str] | None = None) -> None:
    quiet()
    parser = OneLineParser(prog="python -m lit_momentum.compare", description=__doc__,
                           epilog="Every other option is train.py's (python train.py --help).")
    parser.add_argument("--variants", nargs="+", default=VARIANTS, metavar="NAME",
                        help=f"from {', '.join(VARIANTS)} (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, metavar="SEED",
                        help="initial-weight seeds, every variant trained with each (default: --seed_everything)")
    parser.add_argument("--out", type=Path, default=Path("lightning_logs/compare"),
                        help="output directory (default: lightning_logs/compare)")
    parser.add_argument("--threshold", type=float, default=0.69,
                        help="loss for the 'epoch below' column (default 0.69)")
    own, shared = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    unknown = [v for v in own.variants if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)}; allowed: {', '.join(VARIANTS)}")
    if own.seeds and len(set(own.seeds)) < len(own.seeds):
        parser.error("--seeds: each seed once")
    if (own.out / "summary.csv").exists():
        parser.error(f"--out {own.out} already holds a comparison: choose another directory")
    try:
        check_place(own.out, "--out")
    except ValueError as err:
        sys.exit(f"error: {err}")
    # one progress display for the whole job (below), so no bar and no model summary per variant
    shared = [*normalized(shared), "--trainer.default_root_dir", str(own.out), "--trainer.enable_progress_bar",
              "false", "--trainer.enable_model_summary", "false"]
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.seed"):
        logging.getLogger(name).setLevel(logging.WARNING)  # "Seed set", "GPU available", ... once per variant: noise
    runs = build(shared, own.variants, own.seeds)

    rows, curves = [], {}  # curves: each variant's epoch losses for the figure, of its first seed
    job = StopOnSignal()  # a signal between two variants' training stops the job too
    job.install()
    epochs = sum(cli.trainer.max_epochs for cli in runs.values())
    # one bar for the job in a terminal; where the output is a file (a batch job's log), a line per finished run
    with (tqdm(total=epochs, desc="compare", unit="epoch", dynamic_ncols=True, disable=not is_terminal()) as bar,
          shared_machine(1)):  # under SLURM: the task's cores (alone elsewhere: PyTorch's default)
        for (variant, seed), cli in runs.items():
            if job.signum is None:
                bar.set_postfix_str(f"{variant} seed {seed}")
                cli.trainer.callbacks.append(EpochTicker(bar))
                finished = run(cli, variant, seed, own.threshold)
                if finished:
                    rows.append(finished[0])
                    curves.setdefault(variant, finished[1])
                    if not is_terminal():
                        print(f"compare: {variant} seed {seed} done ({len(rows)}/{len(runs)}, "
                              f"{finished[0]['wall_s']:.0f} s)", file=sys.stderr, flush=True)
            signum = job.signum or cli.stopper.signum
            if signum is not None:  # Ctrl-C or SIGTERM: keep what is finished, say what is not
                bar.close()
                write(rows, curves, own.out)
                done = {(r["variant"], r["seed"]) for r in rows}
                missing = [v if own.seeds is None else f"{v} seed {s}" for v, s in runs if (v, s) not in done]
                print(f"stopped by {NAMES[signum]} during {variant}: summary.csv in {own.out} holds "
                      f"{', '.join(dict.fromkeys(r['variant'] for r in rows)) or 'no variant'}; missing: "
                      f"{', '.join(missing) or 'none'}", file=sys.stderr)
                sys.exit(EXIT_CODES[signum])
    job.restore()
    write(rows, curves, own.out)
    print_table(rows)
    if curves.get("manual") and curves.get("builtin"):
        gap = max(abs(a - b) for a, b in zip(curves["manual"], curves["builtin"]))
        print(f"largest |manual - builtin| epoch-loss difference: {gap:.3g}")
    print(f"\nloss_curves.png and summary.csv in {own.out}\nview with: tensorboard --logdir {own.out}")


if __name__ == "__main__":
    main()
