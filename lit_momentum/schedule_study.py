"""Schedules and momentum on MNIST-1D (the MLP and the CNN): is a one-cycle's cycled momentum more than a reshaped
effective step, and does momentum's edge at large steps survive a decay to small steps at the end?

    python -m lit_momentum.schedule_study --out runs/schedules             # both networks (9 min 48 s here)
    python -m lit_momentum.schedule_study --out runs/schedules --quick     # a first look (about 12 s)

(a) ``one-cycle``: PyTorch's ``OneCycleLR`` stepped every step, its peak ``max_lr`` an outer axis, three ways: its
momentum cycled (0.95 -> 0.85 -> 0.95 against the lr, PyTorch's default); the same lr cycle at a constant momentum
(0 or 0.9, ``cycle_momentum false``); and a constant momentum (0 or 0.9) whose effective step ``lr / (1 - m)`` follows
the cycled run's ``lr(t) / (1 - m(t))`` step by step (``lit_momentum.schedules.EffectiveStepOf``). Drawn against the
peak effective step. (b) ``decay``: lr x momentum {0, 0.9, 0.99} at a constant lr and under a cosine decay to 0 over
the run (``CosineAnnealingLR``, stepped per epoch), against the effective step. The metric: the best validation
accuracy, mean over seeds (bars: min and max). ``schedules.csv`` holds the best of each curve and its seeds' range.
"""

import csv
import sys
from pathlib import Path
from typing import Any

from lit_momentum.arguments import study_args
from lit_momentum.families import num
from lit_momentum.plotting import plt
from lit_momentum.sweep.main import main as sweep_main
from lit_momentum.terminal import quiet

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
HALF_DECADES = [round(10 ** (k / 2), 10) for k in range(-8, 3)]  # 1e-4 ... 10
CYCLE = ["--lr_scheduler_interval", "step"]
CYCLED_PEAK_MOMENTUM = 0.85  # OneCycleLR's base_momentum: the momentum at its peak lr
CONTENDERS = {  # name: (label, scheduler options, the peak option, momenta)
    "cycled": ("one-cycle, momentum cycled 0.95-0.85", ["--lr_scheduler", "OneCycleLR", *CYCLE],
               "--lr_scheduler.max_lr", [0.9]),
    "constant": ("one-cycle lr, momentum constant", ["--lr_scheduler", "OneCycleLR", "--lr_scheduler.cycle_momentum",
                                                     "false", *CYCLE], "--lr_scheduler.max_lr", [0.0, 0.9]),
    "matched": ("the cycled run's lr / (1 - m), momentum constant",
                ["--lr_scheduler", "lit_momentum.schedules.EffectiveStepOf", "--lr_scheduler.schedule", "OneCycleLR",
                 *CYCLE], "--lr_scheduler.schedule.max_lr", [0.0, 0.9]),
}
DECAYS = {"constant lr": [], "cosine decay": ["--lr_scheduler", "CosineAnnealingLR"]}
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "mlp": dict(data=["--config", str(CONFIGS / "mnist1d.yaml")], epochs=50, seeds=[0, 1, 2],
                    peaks=[v for v in HALF_DECADES if 0.01 <= v <= 4], lr=[v for v in HALF_DECADES if v >= 1e-3]),
        "cnn": dict(data=["--config", str(CONFIGS / "cnn.yaml")], epochs=50, seeds=[0, 1],
                    peaks=[v for v in HALF_DECADES if 0.01 <= v <= 4], lr=[v for v in HALF_DECADES if v >= 1e-3]),
    },
    "quick": {
        "mlp": dict(data=["--config", str(CONFIGS / "mnist1d.yaml"), "--data.num_samples", "600",
                          "--model.net.hidden", "[32]"], epochs=4, seeds=[0], peaks=[0.1, 1.0], lr=[0.1, 1.0]),
    },
}


def sweep(out: Path, args: list[str], p: dict[str, Any], extra: list[str]) -> list[dict[str, Any]]:
    """One sweep (continued, not retrained, when ``out`` holds it already); its rows."""
    if not (out / "summary.csv").is_file():
        sweep_main([*p["data"], *args, "--seeds", *map(str, p["seeds"]), "--max_epochs", str(p["epochs"]),
                    "--out", str(out), "--trainer.enable_model_summary", "false", *extra])
    with open(out / "summary.csv") as f:
        return [{k: num(v) for k, v in r.items()} for r in csv.DictReader(f)]


def lines(rows: list[dict[str, Any]]) -> dict[float, list[tuple[float, float, float, float]]]:
    """Per momentum: (x, mean, min, max of the best validation accuracy over seeds), sorted by each row's ``x``."""
    cells: dict[tuple[float, float], list[float]] = {}
    for r in rows:
        acc = r["best_val_acc"] if isinstance(r["best_val_acc"], float) else 0.0  # (diverged at once: chance at best)
        cells.setdefault((r["momentum"], r["x"]), []).append(acc)
    out: dict[float, list[tuple[float, float, float, float]]] = {}
    for (m, at), accs in sorted(cells.items()):
        out.setdefault(m, []).append((at, sum(accs) / len(accs), min(accs), max(accs)))
    return out


COLORS = {"cycled": "black", 0.0: "tab:orange", 0.9: "tab:green", 0.99: "tab:purple"}  # a momentum's colour


def draw(ax: Any, curves: dict[str, tuple[Any, list[tuple[float, float, float, float]]]], title: str,
         xlabel: str) -> None:
    """Each curve (colour by momentum; dashed: a constant lr, or the lr cycle at a constant momentum) with its seeds'
    range."""
    for label, (m, pts) in curves.items():
        x, mean, low, high = zip(*pts)
        style = "--" if label.startswith(("constant lr", "one-cycle lr")) else "-"
        ax.errorbar(x, mean, yerr=[[m_ - lo for m_, lo in zip(mean, low)], [hi - m_ for m_, hi in zip(mean, high)]],
                    fmt=style, marker="o", ms=3, capsize=2, label=label, color=COLORS[m])
    ax.set(xscale="log", xlabel=xlabel, ylabel="best validation accuracy", title=title)
    ax.legend(fontsize=7)


def study(source: str, p: dict[str, Any], out: Path, extra: list[str], axes: Any) -> list[dict[str, Any]]:
    """Both questions on one network: its two panels and its rows of ``schedules.csv``."""
    table, one_cycle, decay = [], {}, {}
    for name, (label, options, peak, momenta) in CONTENDERS.items():
        rows = sweep(out / source / name, [*options, peak, *map(str, p["peaks"]), "--momentum", *map(str, momenta)],
                     p, extra)
        key = next(k for k in rows[0] if k.endswith("max_lr"))  # the peak lr; its momentum, 0.85 where cycled
        for r in rows:  # (matched: the cycled run's effective step)
            r["x"] = r[key] / (1 - (r["momentum"] if name == "constant" else CYCLED_PEAK_MOMENTUM))
        for m, pts in lines(rows).items():
            cycled = name == "cycled"
            one_cycle[label if cycled else f"{label} {m:g}"] = ("cycled" if cycled else m, pts)
    for name, options in DECAYS.items():
        t_max = ["--lr_scheduler.T_max", str(p["epochs"])] if options else []
        rows = sweep(out / source / name.replace(" ", "_"), [*options, *t_max, "--lr", *map(str, p["lr"]),
                                                             "--momentum", "0", "0.9", "0.99"], p, extra)
        for r in rows:
            r["x"] = r["lr"] / (1 - r["momentum"])
        for m, pts in lines(rows).items():
            decay[f"{name}, m = {m:g}"] = (m, pts)
    draw(axes[0], one_cycle, f"{source}: (a) one-cycle, {p['epochs']} epochs", "peak effective step lr / (1 - m)")
    draw(axes[1], decay, f"{source}: (b) constant lr or cosine decay", "effective step lr / (1 - m) (at the start)")
    for part, curves in (("one-cycle", one_cycle), ("decay", decay)):
        for label, (_, pts) in curves.items():
            at, mean, low, high = max(pts, key=lambda t: t[1])
            table.append(dict(net=source, part=part, curve=label, best=round(mean, 4), best_min=low, best_max=high,
                              at_effective_step=at, largest_step=pts[-1][0], at_largest=round(pts[-1][1], 4),
                              seeds=len(p["seeds"])))
    return table


def main(argv: list[str] | None = None) -> None:
    quiet()
    argv = sys.argv[1:] if argv is None else argv
    preset_names = ["mlp", "cnn"]
    own, extra = study_args("python -m lit_momentum.schedule_study", __doc__, "about 12 s", preset_names,
                            "the MNIST-1D MLP and the MNIST-1D CNN", argv)
    preset = PRESETS["quick" if own.quick else "full"]
    sources = [s for s in own.sources if s in preset]
    fig, axes = plt.subplots(len(sources), 2, figsize=(12, 4.6 * len(sources)), squeeze=False)
    table = []
    for row, source in enumerate(sources):
        table += study(source, preset[source], own.out, extra, axes[row])
    fig.tight_layout()
    own.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(own.out / "schedules_mnist1d.png", dpi=75)
    plt.close(fig)
    with open(own.out / "schedules.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    print(f"\n{'net':<5}{'part':<11}{'curve':<58}{'best':>7}{'seeds':>15}{'at step':>9}{'largest':>9}")
    for r in table:
        print(f"{r['net']:<5}{r['part']:<11}{r['curve']:<58}{r['best']:>7.3f}   {r['best_min']:.3f}-"
              f"{r['best_max']:.3f}{r['at_effective_step']:>9.3g}{r['at_largest']:>9.3f}")
    print(f"\nschedules.csv and schedules_mnist1d.png in {own.out}")


if __name__ == "__main__":
    main()
