"""The sweep's two figures, from its ``summary.csv`` rows (seeds averaged, diverged points left out and marked).

- ``phase.png``: final loss over lr (x, log-spaced) x momentum (y); a cell shows the mean over seeds.
- ``effective_lr.png``: final loss against the effective step ``lr / (1 - m)``, a line per momentum with its seeds'
  min-max band. If momentum were only a bigger step, the lines would fall on one curve; where they part, it is more.

A panel per combination of the other axes (dampening, nesterov, weight decay) when the grid has several.
"""

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

Row = dict[str, Any]


def panels(rows: list[Row]) -> dict[str, list[Row]]:
    """Rows grouped by the axes the figures do not show, titled by them."""
    out: dict[str, list[Row]] = {}
    for r in rows:
        title = ", ".join(t for t in (f"dampening {r['dampening']:g}" if r["dampening"] else "",
                                      "nesterov" if r["nesterov"] else "",
                                      f"weight decay {r['weight_decay']:g}" if r["weight_decay"] else "") if t)
        out.setdefault(title or "plain momentum", []).append(r)
    return out


def cell(rows: list[Row]) -> tuple[float, float, float, int]:
    """Mean, min and max final loss over the seeds that did not diverge (nan if none), and how many diverged."""
    ok = [r["final_loss"] for r in rows if r["diverged_epoch"] == ""]
    if not ok:
        return math.nan, math.nan, math.nan, len(rows)
    return sum(ok) / len(ok), min(ok), max(ok), len(rows) - len(ok)


def figure(n: int, width: float, height: float) -> tuple[plt.Figure, list[plt.Axes]]:
    fig, axes = plt.subplots(1, n, figsize=(width * n, height), squeeze=False)
    return fig, list(axes[0])


def plot_phase(rows: list[Row], out: Path) -> None:
    groups = panels(rows)
    fig, axes = figure(len(groups), 6.5, 5)
    for ax, (title, rs) in zip(axes, groups.items()):
        lrs, moms = sorted({r["lr"] for r in rs}), sorted({r["momentum"] for r in rs})
        cells = {(i, j): cell([r for r in rs if r["lr"] == lr and r["momentum"] == m])
                 for i, m in enumerate(moms) for j, lr in enumerate(lrs)}
        grid = np.full((len(moms), len(lrs)), np.nan)
        for (i, j), (mean, _, _, _) in cells.items():
            grid[i, j] = mean
        middle = np.nanmean(np.log10(grid)) if not np.isnan(grid).all() else 0.0
        for (i, j), (mean, _, _, diverged) in cells.items():
            if math.isnan(mean):
                ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, color="0.85", hatch="xx", ec="0.5"))
                ax.text(j, i, "diverged", ha="center", va="center", fontsize=8, color="firebrick")
            else:  # dark text on the light (low-loss) end of the colour map
                ax.text(j, i, f"{mean:.3g}" + (f"\n({diverged} div.)" if diverged else ""), ha="center",
                        va="center", fontsize=8, color="k" if np.log10(mean) < middle else "w")
        image = ax.imshow(np.log10(grid), origin="lower", cmap="viridis_r", aspect="auto")
        fig.colorbar(image, ax=ax, label="log10 final loss (mean over seeds)")
        ax.set_xticks(range(len(lrs)), [f"{v:g}" for v in lrs])
        ax.set_yticks(range(len(moms)), [f"{v:g}" for v in moms])
        ax.set(xlabel="lr", ylabel="momentum", title=f"Final loss: {title}")
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_effective_lr(rows: list[Row], out: Path) -> None:
    groups = panels(rows)
    fig, axes = figure(len(groups), 7, 5)
    for ax, (title, rs) in zip(axes, groups.items()):
        for m in sorted({r["momentum"] for r in rs}):
            lrs = sorted({r["lr"] for r in rs if r["momentum"] == m})
            stats = [cell([r for r in rs if r["momentum"] == m and r["lr"] == lr]) for lr in lrs]
            x = np.array(lrs) / (1 - m)
            mean, low, high = (np.array([s[i] for s in stats]) for i in range(3))
            (line,) = ax.plot(x, mean, "o-", ms=4, label=f"momentum {m:g}")
            ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, lw=0)
            gone = [xi for xi, s in zip(x, stats) if math.isnan(s[0])]
            if gone:  # every seed diverged: marked along the top edge
                ax.plot(gone, [1.0] * len(gone), "x", color=line.get_color(), ms=9, mew=2,
                        transform=ax.get_xaxis_transform(), clip_on=False)
        ax.set(xscale="log", yscale="log", xlabel="effective step lr / (1 - momentum)",
               ylabel="final loss (mean over seeds, min-max band)",
               title=f"{title}  (x on top: diverged)")
        ax.legend(fontsize=8)
    fig.suptitle("Is momentum just a bigger step? Then the lines would fall on one curve.", fontsize=11)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
