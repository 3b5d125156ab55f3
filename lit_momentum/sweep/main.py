"""The command ``python -m lit_momentum.sweep``: parse, train the grid, write its summary and figures."""

import csv
import os
import sys
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.model_helpers import is_overridden

from lit_momentum.arguments import expand_aliases, find_option
from lit_momentum.cli import MomentumCLI, build, fit
from lit_momentum.curves import curve_stats
from lit_momentum.mlp import hidden_widths, outputs
from lit_momentum.runs import claim_dir, next_version_dir
from lit_momentum.sweep.figures import METRICS, plot_effective_lr, plot_phase
from lit_momentum.sweep.grid import AXES, GridMLP, make_grid
from lit_momentum.sweep.logger import HPARAMS_METRICS, VAL_METRICS, GridLogger
from lit_momentum.sweep.memory import available_bytes, grid_bytes
from lit_momentum.terminal import quiet

COLUMNS = ["run", "lr", "momentum", "dampening", "nesterov", "weight_decay", "seed", "final_loss", "best_loss",
           "epoch_below_threshold", "ping_pong", "tv_over_net", "diverged_epoch", "val_loss", "best_val_acc",
           "epoch_best_val_acc"]
OWN = {"--out": None, "--threshold": 0.69, "--metric": None}  # the sweep's own single-value options, defaults
OUT_ENV = "LIT_MOMENTUM_SWEEP_OUT"


def split_args(argv: list[str]) -> tuple[dict[str, Any], list[str]]:
    """Take the sweep's own options out of ``argv``; rewrite ``--lr 1e-5 1e-4`` to ``--model.lr=[1e-5, 1e-4]``."""
    own, rest, i = dict(OWN), [], 0
    while i < len(argv):
        name, eq, value = argv[i].partition("=")
        values = [value] if eq else []
        i += 1
        if name.removeprefix("--") in AXES or name in OWN or name == "--bound":
            while not eq and i < len(argv) and not argv[i].startswith("--"):
                values.append(argv[i])
                i += 1
            if not values:
                raise ValueError(f"{name} needs a value")
        if name.removeprefix("--") in AXES:
            rest.append(f"--model.{name[2:]}=[{', '.join(values)}]")
        elif name in OWN or name == "--bound":
            if len(values) > 1:
                raise ValueError(f"{name} takes one value, got {' '.join(values)}")
            if name == "--bound":
                rest.append(f"--model.bound={values[0]}")
            else:
                own[name] = values[0]
        else:
            rest.append(argv[i - 1])
    try:
        own["--threshold"] = float(own["--threshold"])
    except ValueError:
        raise ValueError(f"--threshold must be a number, got {own['--threshold']}") from None
    if own["--metric"] not in (None, *METRICS):
        raise ValueError(f"--metric must be one of {', '.join(METRICS)}; got {own['--metric']}")
    return own, rest


class SweepCLI(MomentumCLI):
    """``MomentumCLI`` over ``GridMLP``: the same options, plus the grid's checks, logger and checkpoint place."""

    model_class = GridMLP
    trains_grid = True
    command = "python -m lit_momentum.sweep"
    out: Path | None = None  # --out, or the checkpoint's directory; None: a new one, chosen once the config is known

    def add_arguments_to_parser(self, parser: Any) -> None:
        super().add_arguments_to_parser(parser)
        if not self.resume:
            parser.set_defaults({"model.seeds": None})  # None: [--seed_everything]

    def before_instantiate_classes(self) -> None:
        cfg = self.config
        if cfg.model.seeds is None:
            cfg.model.seeds = [cfg.seed_everything]
        super().before_instantiate_classes()
        make_grid(**{a: cfg.model[a] for a in AXES})  # a bad grid is refused before any allocation
        if str(cfg.trainer.precision) in ("16", "16-mixed"):
            raise ValueError("--trainer.precision 16-mixed: its one gradient scaler would skip every point's step when "
                             "one point overflows; use 32-true or bf16-mixed")
        if cfg.trainer.gradient_clip_val is not None:
            raise ValueError("--trainer.gradient_clip_val: clipping would take one norm over all the grid's points; "
                             "not supported by the sweep")
        if self.out is None:
            self.out = next_version_dir(Path(cfg.trainer.default_root_dir or ".") / "lightning_logs" / "sweep")
        cfg.checkpoint.dirpath = str(self.out)

    def check_fits(self, dm: L.LightningDataModule) -> None:
        """Refuse a grid that would not fit in memory, before it is allocated."""
        cfg = self.config
        points = make_grid(**{a: cfg.model[a] for a in AXES})
        widths = [dm.dim, *hidden_widths(dm.dim, cfg.model.hidden), outputs(dm.num_classes)]
        batch = getattr(dm, "batch_size", 256)
        batches = (batch, getattr(dm, "eval_batch_size", batch))
        need = grid_bytes(len(points), widths, batches, any(p.momentum for p in points))
        free = available_bytes(str(cfg.trainer.accelerator))
        if need > 0.8 * free:
            fits = int(0.8 * free // grid_bytes(1, widths, batches, True))
            raise ValueError(f"a grid of {len(points)} points needs about {need / 2**30:.1f} GiB (weights, gradients, "
                             f"velocities, activations) and {free / 2**30:.1f} GiB is free: at most {fits} points fit")

    def has_validation(self) -> bool:
        return is_overridden("val_dataloader", self.datamodule, L.LightningDataModule)

    def resumes_in_place(self) -> bool:
        return self.resume is not None

    def make_logger(self) -> GridLogger:
        pts = self.model.points
        settings = {p.name: {"lr": p.lr, "momentum": p.momentum, "dampening": p.dampening, "nesterov": p.nesterov,
                             "weight_decay": p.weight_decay, "seed": p.seed} for p in pts}
        return GridLogger(self.out, settings, seed_bands=len({p.seed for p in pts}) > 1,
                          metrics=HPARAMS_METRICS + (VAL_METRICS if self.has_validation() else ()),
                          purge_step=self.resume.global_step if self.resume else None)


def choose_out(own: dict[str, Any], rest: list[str]) -> Path | None:
    """The sweep's directory: the checkpoint's own when resuming, else ``--out`` if new or empty (never reused).
    DDP ranks that Lightning launches take the one their rank 0 chose (passed in ``OUT_ENV``)."""
    if rank_zero_only.rank > 0 and os.environ.get(OUT_ENV):
        return Path(os.environ[OUT_ENV])
    ckpt = find_option(rest, "--ckpt_path")
    if ckpt:
        home = Path(ckpt).resolve().parent
        if own["--out"] and Path(own["--out"]).resolve() != home:
            raise ValueError(f"--out {own['--out']}: a resumed sweep continues in its checkpoint's directory {home}")
        return home
    out = Path(own["--out"]) if own["--out"] else None
    if out and out.exists() and any(out.iterdir()) and rank_zero_only.rank == 0:
        raise ValueError(f"--out {out} is not empty: choose a new directory, or continue the sweep there with "
                         f"--ckpt_path {out / 'last.ckpt'}")
    return out


def summarize(model: GridMLP, threshold: float) -> list[dict[str, Any]]:
    """One row per grid point: its settings and the statistics of its epoch-loss curve (as ``compare`` defines them).
    A diverged point's statistics cover the epochs before it diverged; its final loss is the one that tripped it."""
    rows = []
    for k, p in enumerate(model.points):
        losses = [h[k] for h in model.history]
        diverged = int(model.diverged_epoch[k])
        good = losses[:diverged] if diverged >= 0 else losses
        stats = curve_stats(good, threshold) if len(good) > 1 else dict(
            final_loss=good[0] if good else "", best_loss=good[0] if good else "",
            epoch_below_threshold="", ping_pong="", tv_over_net="")
        if diverged >= 0:
            stats["final_loss"] = losses[diverged]
        val = [(epoch, loss[k], acc[k]) for epoch, loss, acc in model.val_history if diverged < 0 or epoch < diverged]
        best = max(val, key=lambda v: v[2]) if val else None  # the first epoch of the best accuracy
        rows.append(dict(run=p.name, lr=p.lr, momentum=p.momentum, dampening=p.dampening, nesterov=p.nesterov,
                         weight_decay=p.weight_decay, seed=p.seed, **stats,
                         diverged_epoch=diverged if diverged >= 0 else "", val_loss=val[-1][1] if val else "",
                         best_val_acc=best[2] if best else "", epoch_best_val_acc=best[0] if best else ""))
    return rows


def print_table(rows: list[dict[str, Any]]) -> None:
    """Per setting (seeds together): mean, min and max final loss of the points that did not diverge."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["run"].rsplit("_seed", 1)[0], []).append(r)
    print(f"\n{'setting':<36}{'seeds':>6}{'final mean':>12}{'min':>10}{'max':>10}{'diverged':>10}")
    for setting, rs in groups.items():
        ok = [r["final_loss"] for r in rs if r["diverged_epoch"] == ""]
        cells = f"{sum(ok) / len(ok):>12.4g}{min(ok):>10.4g}{max(ok):>10.4g}" if ok else f"{'-':>12}{'-':>10}{'-':>10}"
        print(f"{setting:<36}{len(rs):>6}{cells}{len(rs) - len(ok):>10}")


def main(argv: list[str] | None = None) -> None:
    quiet()
    argv = sys.argv[1:] if argv is None else argv
    try:
        own, rest = split_args(argv)
        SweepCLI.out = choose_out(own, rest)
    except ValueError as err:
        sys.exit(f"error: {err}")
    cli, resume = build(SweepCLI, expand_aliases(rest))  # bad input stops here: nothing is written before
    out = cli.out
    if not resume and cli.trainer.is_global_zero:
        out = claim_dir(out)  # atomically: a sweep started at the same moment gets the next version
        cli.out = cli.trainer.logger.root = out
        cli.trainer.checkpoint_callback.dirpath = str(out)
    os.environ[OUT_ENV] = str(out)  # for the DDP ranks Lightning launches with this same command
    fit(cli, resume, argv)
    if not cli.trainer.is_global_zero:
        return
    rows = summarize(cli.model, own["--threshold"])
    with open(out / "summary.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    metric = own["--metric"] or ("best_val_acc" if cli.model.val_history else "final_loss")
    plot_phase(rows, out / "phase.png", metric)
    plot_effective_lr(rows, out / "effective_lr.png", metric)
    print_table(rows)
    n_div = sum(r["diverged_epoch"] != "" for r in rows)
    print(f"\n{len(rows)} grid points, {n_div} diverged. summary.csv, phase.png, effective_lr.png and last.ckpt in "
          f"{out}\nview with: tensorboard --logdir {out}")

