"""The study's figures, from its ``batch_size.csv`` rows: a panel per source (MNIST-1D, random labels, the NQM).

- ``steps_vs_batch.png``: steps to the target at the best lr against the batch size, log-log, a line per optimizer
  with its seeds' min-max band, the perfect-scaling slope (steps halve as the batch doubles) for reference, and each
  optimizer's critical batch size (a dotted line, its number in the legend) where its line leaves perfect scaling.
- ``best_lr_vs_batch.png``: the best lr (solid) and the best effective step ``lr / (1 - m)`` (dashed) against the
  batch size: where momentum is just a bigger step, the dashed lines fall on plain SGD's.
"""

from pathlib import Path
from typing import Any

from matplotlib.ticker import NullFormatter

from lit_momentum.plotting import plt

Row = dict[str, Any]
TITLES = {"mnist1d": "MNIST-1D (measured)", "random": "the article's random labels (measured)",
          "nqm": "noisy quadratic model (theory)"}


def label(row: Row) -> str:
    if row.get("optimizer") == "adam":
        return f"Adam, beta1 {row['momentum']:g}" + (" (H^-1/2)" if row["source"] == "nqm" else "")
    return "plain SGD" if row["momentum"] == 0 else f"momentum {row['momentum']:g}"


def lines(rows: list[Row], source: str) -> dict[str, list[Row]]:
    """A source's rows by curve (plain SGD, each momentum, Adam), each in batch-size order."""
    out: dict[str, list[Row]] = {}
    order = {"sgd": 0, "momentum": 0, "adam": 1}
    for r in sorted((r for r in rows if r["source"] == source),
                    key=lambda r: (order.get(r.get("optimizer", "sgd"), 0), r["momentum"], r["batch_size"])):
        out.setdefault(label(r), []).append(r)
    return out


def panels(rows: list[Row]) -> tuple[plt.Figure, list[tuple[plt.Axes, str]]]:
    """A panel per source, side by side, sized so that the text stays legible at a README's width."""
    sources = [s for s in TITLES if any(r["source"] == s for r in rows)]
    fig, axes = plt.subplots(1, len(sources), figsize=(5.4 * len(sources), 4.8), squeeze=False)
    return fig, list(zip(axes[0], sources))


def batch_ticks(ax: plt.Axes, rows: list[Row], source: str) -> None:
    """A tick at every batch size studied, labelled as a number (a log axis alone labels only powers of ten)."""
    sizes = sorted({r["batch_size"] for r in rows if r["source"] == source})
    every = -(-len(sizes) // 10)  # at most about ten labels (the NQM's 17 sizes: every other one)
    ax.set_xticks(sizes, [f"{b:g}" if i % every == 0 else "" for i, b in enumerate(sizes)])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.tick_params(axis="x", labelsize=9)


def plot_steps(rows: list[Row], critical: dict[tuple[str, str], float | None], out: Path) -> None:
    with plt.rc_context({"font.size": 11}):
        draw_steps(rows, critical, out)


def draw_steps(rows: list[Row], critical: dict[tuple[str, str], float | None], out: Path) -> None:
    fig, axes = panels(rows)
    for ax, source in axes:
        drawn = False
        for name, rs in lines(rows, source).items():
            pts = [r for r in rs if r["steps"] != ""]
            if not pts:
                continue
            drawn = True
            b = [r["batch_size"] for r in pts]
            crit = critical.get((source, name))  # in the legend: numbers by the lines would collide (265, 285)
            (line,) = ax.plot(b, [r["steps"] for r in pts], "o-", ms=4,
                              label=f"{name}: critical {crit:.0f}" if crit else name)
            ax.fill_between(b, [r["steps_min"] for r in pts], [r["steps_max"] for r in pts], color=line.get_color(),
                            alpha=0.2, lw=0)
            if crit:
                ax.axvline(crit, color=line.get_color(), ls=":", lw=1.2)
        if not drawn:
            ax.text(0.5, 0.5, "no batch size reached the target", ha="center", transform=ax.transAxes)
            ax.set(title=TITLES[source])
            continue
        first = min((r for r in rows if r["source"] == source and r["steps"] != ""), key=lambda r: r["batch_size"])
        top = max(r["batch_size"] for r in rows if r["source"] == source)
        ax.plot([first["batch_size"], top], [first["steps"], first["steps"] * first["batch_size"] / top], "k--", lw=0.8,
                label="perfect scaling (steps x batch = const)")
        ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="steps to target (best lr, mean of seeds)",
               title=f"{TITLES[source]}: target {first['target']}")
        batch_ticks(ax, rows, source)
        ax.legend(fontsize=9)
    fig.suptitle("Steps to a target against the batch size; dotted: each optimizer's critical batch size (legend)",
                 fontsize=13)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def plot_best_lr(rows: list[Row], out: Path) -> None:
    with plt.rc_context({"font.size": 11}):
        draw_best_lr(rows, out)


def draw_best_lr(rows: list[Row], out: Path) -> None:
    fig, axes = panels(rows)
    for ax, source in axes:
        for name, rs in lines(rows, source).items():
            pts = [r for r in rs if r["best_lr"] != ""]
            if not pts:
                continue
            b = [r["batch_size"] for r in pts]
            (line,) = ax.plot(b, [r["best_lr"] for r in pts], "o-", ms=4, label=f"{name}: lr")
            if pts[0]["momentum"] and pts[0]["best_effective_lr"] != "":  # not for Adam: its step is lr
                ax.plot(b, [r["best_effective_lr"] for r in pts], "s--", ms=3, color=line.get_color(),
                        label=f"{name}: lr / (1 - m)")
            edge = [r for r in pts if r["best_lr_at_edge"]]
            ax.plot([r["batch_size"] for r in edge], [r["best_lr"] for r in edge], "x", ms=9, mew=2,
                    color=line.get_color())
        ax.set(xscale="log", yscale="log", xlabel="batch size", ylabel="best learning rate",
               title=f"{TITLES[source]}\nx: at the edge of the lr range")
        batch_ticks(ax, rows, source)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
