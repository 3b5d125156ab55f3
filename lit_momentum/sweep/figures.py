"""The sweep's two figures, from its ``summary.csv`` rows (seeds averaged, diverged points left out and marked), over
one metric: ``final_loss`` (training), ``best_loss``, ``val_loss`` or ``best_val_acc`` (held out).

- ``phase.png``: the metric over lr (x, log-spaced) x momentum (y); a cell shows the mean over seeds.
- ``outer.png`` (with one numeric outer axis): the metric at each momentum's best lr against the outer values.
- ``effective_lr.png``: the metric against the effective step ``lr / (1 - m)``, a line per momentum with its seeds'
  min-max band. If momentum were only a bigger step, the lines would fall on one curve; where they part, it is more.

A panel per combination of the other axes (dampening, nesterov, weight decay) when the grid has several. A panel with
no value to show (every point diverged, or no validation) says so instead of drawing.
"""

import math
from pathlib import Path
from typing import Any

import numpy as np

from lit_momentum.plotting import plt

Row = dict[str, Any]
METRICS = {  # column: (label, log scale)
    "final_loss": ("final training loss", True),
    "best_loss": ("best training loss", True),
    "val_loss": ("final validation loss", True),
    "best_val_acc": ("best validation accuracy", False),
}


def panels(rows: list[Row]) -> dict[str, list[Row]]:
    """Rows grouped by the axes the figures do not show, titled by them."""
    out: dict[str, list[Row]] = {}
    for r in rows:
        title = ", ".join(t for t in (f"dampening {r['dampening']:g}" if r["dampening"] else "",
                                      "nesterov" if r["nesterov"] else "",
                                      f"weight decay {r['weight_decay']:g}" if r["weight_decay"] else "") if t)
        out.setdefault(title or "plain momentum", []).append(r)
    return out


def cell(rows: list[Row], metric: str) -> tuple[float, float, float, int]:
    """Mean, min and max of ``metric`` over the seeds that did not diverge (nan if none), and how many diverged."""
    ok = [float(r[metric]) for r in rows if r["diverged_epoch"] == "" and r[metric] != ""]
    ok = [v for v in ok if math.isfinite(v)]
    if not ok:
        return math.nan, math.nan, math.nan, sum(r["diverged_epoch"] != "" for r in rows)
    return sum(ok) / len(ok), min(ok), max(ok), sum(r["diverged_epoch"] != "" for r in rows)


def figure(n: int, width: float, height: float) -> tuple[plt.Figure, list[plt.Axes]]:
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, list(axes[0])


def nothing_to_show(ax: plt.Axes, title: str) -> None:
    ax.text(0.5, 0.5, "no finite value to show:\nevery point diverged (or no validation)", ha="center",
            va="center", transform=ax.transAxes, color="firebrick")
    ax.set(title=title, xticks=[], yticks=[])


def plot_phase(rows: list[Row], out: Path, metric: str = "final_loss") -> None:
    label, log = METRICS[metric]
    groups = panels(rows)
    fig, axes = figure(len(groups), 6.5, 5)
    for ax, (title, rs) in zip(axes, groups.items()):
        lrs, moms = sorted({r["lr"] for r in rs}), sorted({r["momentum"] for r in rs})
        cells = {(i, j): cell([r for r in rs if r["lr"] == lr and r["momentum"] == m], metric)
                 for i, m in enumerate(moms) for j, lr in enumerate(lrs)}
        grid = np.full((len(moms), len(lrs)), np.nan)
        for (i, j), (mean, _, _, _) in cells.items():
            grid[i, j] = mean
        if np.isnan(grid).all():
            nothing_to_show(ax, f"{label}: {title}")
            continue
        shown = np.log10(grid) if log else grid
        middle = np.nanmean(shown)
        for (i, j), (mean, _, _, diverged) in cells.items():
            if math.isnan(mean):
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, color="0.85", hatch="xx", ec="0.5"))
                ax.text(j, i, "div.", ha="center", va="center", fontsize=8, color="firebrick")  # fits any cell
            else:  # dark text on the light end of the colour map
                value = np.log10(mean) if log else mean
                dark = value < middle if log else value > middle
                ax.text(j, i, f"{mean:.3g}" + (f"\n({diverged} div.)" if diverged else ""), ha="center",
                        va="center", fontsize=8, color="k" if dark else "w")
        image = ax.imshow(shown, origin="lower", cmap="viridis_r" if log else "viridis", aspect="auto")
        fig.colorbar(image, ax=ax, label=("log10 " if log else "") + f"{label} (mean over seeds; div.: diverged)")
        ax.set_xticks(range(len(lrs)), [f"{v:g}" for v in lrs], rotation=45 if len(lrs) > 6 else 0)
        ax.set_yticks(range(len(moms)), [f"{v:g}" for v in moms])
        ax.set(xlabel="lr", ylabel="momentum", title=f"{label[0].upper() + label[1:]}: {title}")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_effective_lr(rows: list[Row], out: Path, metric: str = "final_loss") -> None:
    label, log = METRICS[metric]
    groups = panels(rows)
    fig, axes = figure(len(groups), 7, 5)
    for ax, (title, rs) in zip(axes, groups.items()):
        lines = 0
        for m in sorted({r["momentum"] for r in rs}):
            lrs = sorted({r["lr"] for r in rs if r["momentum"] == m})
            stats = [cell([r for r in rs if r["momentum"] == m and r["lr"] == lr], metric) for lr in lrs]
            x = np.array(lrs) / (1 - m)
            mean, low, high = (np.array([s[i] for s in stats]) for i in range(3))
            if np.isnan(mean).all():  # every seed diverged everywhere: marked along the top edge only
                ax.plot(x, [1.0] * len(x), "x", ms=9, mew=2, transform=ax.get_xaxis_transform(), clip_on=False,
                        label=f"momentum {m:g} (diverged)")
                continue
            lines += 1
            (line,) = ax.plot(x, mean, "o-", ms=4, label=f"momentum {m:g}")
            ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, lw=0)
            gone = [xi for xi, s in zip(x, stats) if math.isnan(s[0])]
            if gone:  # every seed diverged: marked along the top edge
                ax.plot(gone, [1.0] * len(gone), "x", color=line.get_color(), ms=9, mew=2,
                        transform=ax.get_xaxis_transform(), clip_on=False)
        if not lines:
            nothing_to_show(ax, title)
            continue
        ax.set(xscale="log", yscale="log" if log else "linear", xlabel="effective step lr / (1 - momentum)",
               ylabel=f"{label} (mean over seeds, min-max band)", title=f"{title}  (x on top: diverged)")
        ax.legend(fontsize=8)
    fig.suptitle("Is momentum just a bigger step? Then the lines would fall on one curve.", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_outer(rows: list[Row], axis: str, out: Path, metric: str = "final_loss") -> None:
    """The metric at each momentum's best lr (seeds averaged) against the values of one outer axis: how the best a
    momentum can do changes with, say, the batch size. A panel per combination of the other grid axes."""
    label, log = METRICS[metric]
    best = min if log else max  # losses: the lowest; accuracies: the highest
    groups = panels(rows)
    fig, axes = figure(len(groups), 7, 5)
    for ax, (title, rs) in zip(axes, groups.items()):
        xs = sorted({r[axis] for r in rs})
        drawn = False
        for m in sorted({r["momentum"] for r in rs}):
            ys = []
            for x in xs:
                cells = [cell([r for r in rs if r[axis] == x and r["momentum"] == m and r["lr"] == lr], metric)[0]
                         for lr in sorted({r["lr"] for r in rs})]
                finite = [c for c in cells if math.isfinite(c)]
                ys.append(best(finite) if finite else math.nan)
            if not all(math.isnan(y) for y in ys):
                ax.plot(xs, ys, "o-", ms=4, label=f"momentum {m:g}")
                drawn = True
        if not drawn:
            nothing_to_show(ax, title)
            continue
        positive = all(x > 0 for x in xs)
        ax.set(xscale="log" if positive and max(xs) / min(xs) >= 10 else "linear",
               yscale="log" if log else "linear", xlabel=axis, ylabel=f"{label} at the best lr (mean over seeds)",
               title=title)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
