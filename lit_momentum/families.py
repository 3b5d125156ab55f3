"""Momentum in six optimizers side by side: whose "bigger step" is it?

    python -m lit_momentum.families --out runs/families             # random labels and MNIST-1D (28 min, under load)
    python -m lit_momentum.families --out runs/families --quick     # a first look (about 21 s)

The article writes momentum as ``v = m v + (1 - m) g``: that is SGD with ``dampening = m`` (``--dampening
momentum``), and exactly Adam's first moment with ``beta1 = m``. PyTorch's ``torch.optim.SGD`` uses ``v = m v + g``
(dampening 0): on a steady slope its velocity is ``g / (1 - m)``, the article's is ``g``. RMSprop's momentum, NAdam's
beta1 and Lion's first beta (``lit_momentum.lion``, a user-written class) join them, each with its prediction stated
in ``FAMILIES`` before it was measured. Each family is swept over
lr x m x seeds with the grid engine, on the article's random labels (final training loss) and on MNIST-1D (best
validation accuracy), and drawn twice: against the effective step ``lr / (1 - m)`` and against ``lr``. A family whose
momenta fall on one curve on an axis is, on that axis, a step size and nothing more. ``families_<source>.png`` holds
the six panels of a source; ``families.csv`` the spread between the momenta's curves per family and axis.
"""

import csv
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

from lit_momentum.arguments import study_args
from lit_momentum.plotting import plt
from lit_momentum.sweep.figures import METRICS, cell
from lit_momentum.sweep.main import main as sweep_main
from lit_momentum.terminal import quiet

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
FAMILIES = {  # name: (title, options, lr grid key, the prediction from the update rule, stated before measuring)
    "pytorch": ("torch.optim.SGD: v = m v + g", [], "sgd", "effective"),
    "article": ("the article: v = m v + (1 - m) g (dampening = m)", ["--dampening", "momentum"], "sgd", "lr"),
    "adam": ("Adam, beta1 = m", ["--model.optimizer", "adam"], "adam", "lr"),
    # v = m v + g / sqrt(E g^2): PyTorch's sum, of the normalised gradient: a bigger step, lr / (1 - m)
    "rmsprop": ("RMSprop: v = m v + g / sqrt(E g^2)", ["--model.optimizer", "RMSprop"], "adam", "effective"),
    # Adam's average with a Nesterov look-ahead: an average, its step the lr
    "nadam": ("NAdam, beta1 = m", ["--model.optimizer", "NAdam"], "adam", "lr"),
    # lr * sign(m v + (1 - m) g): every weight moves by lr whatever m is; m only mixes the direction
    "lion": ("Lion (user-written), beta1 = m", ["--model.optimizer", "lit_momentum.lion.Lion"], "adam", "lr"),
}
MOMENTA = [0.0, 0.5, 0.9, 0.99]
HALF_DECADES = [round(10 ** (k / 2), 10) for k in range(-12, 3)]  # 1e-6 ... 10
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "random": dict(data=["--data.dim", "64", "--data.num_samples", "512"], epochs=100, metric="final_loss",
                       lr={"sgd": [v for v in HALF_DECADES if 1e-3 <= v <= 10], "adam": [v for v in HALF_DECADES
                                                                                      if 1e-4 <= v <= 0.3]},
                       seeds=[0, 1, 2]),
        "mnist1d": dict(data=["--config", str(CONFIGS / "mnist1d.yaml")], epochs=50, metric="best_val_acc",
                        lr={"sgd": [v for v in HALF_DECADES if 1e-4 <= v <= 10],
                            "adam": [v for v in HALF_DECADES if 1e-5 <= v <= 0.3]}, seeds=[0, 1, 2]),
    },
    "quick": {
        "random": dict(data=["--data.dim", "16", "--data.num_samples", "64"], epochs=30, metric="final_loss",
                       lr={"sgd": [0.01, 0.1, 1.0], "adam": [1e-3, 1e-2, 0.1]}, seeds=[0]),
        "mnist1d": dict(data=["--config", str(CONFIGS / "mnist1d.yaml"), "--data.num_samples", "600",
                              "--model.net.hidden", "[32]"], epochs=10, metric="best_val_acc",
                        lr={"sgd": [0.01, 0.1, 1.0], "adam": [1e-3, 1e-2, 0.1]}, seeds=[0]),
    },
}


def sweep(family: str, p: dict[str, Any], out: Path, extra: list[str]) -> list[dict[str, Any]]:
    """One family's grid on one source (continued, not retrained, when its directory holds it already)."""
    _, options, lrs, _ = FAMILIES[family]
    args = [*p["data"], *options, "--lr", *map(str, p["lr"][lrs]), "--momentum", *map(str, MOMENTA), "--seeds",
            *map(str, p["seeds"]), "--max_epochs", str(p["epochs"]), "--out", str(out),
            "--trainer.enable_model_summary", "false", *extra]
    if not (out / "summary.csv").is_file():
        sweep_main(args)
    with open(out / "summary.csv") as f:
        return [{k: num(v) for k, v in r.items()} for r in csv.DictReader(f)]


def num(v: str) -> Any:
    try:
        return float(v) if v not in ("True", "False") else v == "True"
    except ValueError:
        return v


def curves(rows: list[dict[str, Any]], metric: str, axis: str) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """Per momentum: x (``effective``: lr / (1 - m), ``lr``) and the metric's mean over seeds (nan where all
    diverged)."""
    out = {}
    for m in sorted({r["momentum"] for r in rows}):
        lrs = sorted({r["lr"] for r in rows if r["momentum"] == m})
        means = [cell([r for r in rows if r["momentum"] == m and r["lr"] == lr], metric)[0] for lr in lrs]
        x = np.array(lrs) / (1 - m) if axis == "effective" else np.array(lrs)
        out[m] = (x, np.array(means))
    return out


def spread(lines: dict[float, tuple[np.ndarray, np.ndarray]], log: bool) -> float:
    """How far apart the momenta's curves are: the mean, over the x where at least two curves have a value
    (interpolated in log x), of their max - min (in decades for a loss, in accuracy otherwise). 0: one curve."""
    xs = np.unique(np.concatenate([x for x, _ in lines.values()]))
    gaps = []
    for x in xs:
        vals = []
        for lx, ly in lines.values():
            ok = np.isfinite(ly)
            if ok.sum() >= 2 and lx[ok][0] <= x <= lx[ok][-1]:
                y = np.interp(np.log(x), np.log(lx[ok]), np.log10(ly[ok]) if log else ly[ok])
                vals.append(y)
        if len(vals) >= 2:
            gaps.append(max(vals) - min(vals))
    return float(np.mean(gaps)) if gaps else math.nan


def plot(source: str, results: dict[str, list[dict[str, Any]]], metric: str, out: Path) -> list[dict[str, Any]]:
    """``families_<source>.png``: a column per family (three to a row), its curves against lr / (1 - m) (top) and lr
    (below it); returns the spread per family and axis, with the axis predicted."""
    label, log = METRICS[metric]
    cols = min(3, len(results))
    blocks = math.ceil(len(results) / cols)
    fig, axes = plt.subplots(2 * blocks, cols, figsize=(5.5 * cols, 4 * 2 * blocks), squeeze=False)
    table = []
    for i, (family, rows) in enumerate(results.items()):
        col = i % cols
        for row, axis in enumerate(("effective", "lr")):
            ax, lines = axes[2 * (i // cols) + row][col], curves(rows, metric, axis)
            for m, (x, y) in lines.items():
                ax.plot(x, y, "o-", ms=3, label=f"m = {m:g}")
            s = spread(lines, log)
            table.append(dict(source=source, family=family, axis=axis, spread=s, unit="decades" if log else "acc",
                              predicted=FAMILIES[family][3]))
            xlabel = "effective step lr / (1 - m)" if axis == "effective" else "learning rate"
            ax.set(xscale="log", yscale="log" if log else "linear", xlabel=xlabel, ylabel=label if col == 0 else "",
                   title=f"{FAMILIES[family][0]}\nspread between momenta: {s:.2g}" if row == 0 else
                   f"spread between momenta: {s:.2g}")
            ax.legend(fontsize=7)
    for ax in axes.flat[2 * len(results):] if len(results) % cols else []:
        ax.set_visible(False)
    fig.suptitle(f"{source}: whose momentum is a bigger step? (one curve = a step size and no more)")
    fig.tight_layout()
    fig.savefig(out / f"families_{source}.png", dpi=90)
    plt.close(fig)
    return table


def main(argv: list[str] | None = None) -> None:
    quiet()
    argv = sys.argv[1:] if argv is None else argv
    own, extra = study_args("python -m lit_momentum.families", __doc__, "about 21 s", ["random", "mnist1d"],
                            "the article's random labels (final training loss), MNIST-1D (best validation accuracy)",
                            argv)
    preset = PRESETS["quick" if own.quick else "full"]
    table = []
    for source in own.sources:
        p = preset[source]
        results = {f: sweep(f, p, own.out / source / f, extra) for f in FAMILIES}
        table += plot(source, results, p["metric"], own.out)
    with open(own.out / "families.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(table[0]))
        writer.writeheader()
        writer.writerows(table)
    print(f"\n{'source':<9}{'family':<9}{'spread vs lr/(1-m)':>20}{'spread vs lr':>14}  predicted  measured")
    for source in own.sources:
        for family in FAMILIES:
            s = {r["axis"]: r["spread"] for r in table if (r["source"], r["family"]) == (source, family)}
            found = "effective" if s["effective"] < s["lr"] else "lr"  # the axis its momenta fall closer on
            print(f"{source:<9}{family:<9}{s['effective']:>20.3g}{s['lr']:>14.3g}  {FAMILIES[family][3]:>9}  "
                  f"{found:>8}")
    print(f"\nfamilies.csv and {', '.join(f'families_{s}.png' for s in own.sources)} in {own.out}")


if __name__ == "__main__":
    main()
