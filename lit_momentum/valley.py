"""The article's toy valley: a ball that sticks at a bump without momentum and rolls over it with momentum.

    python -m lit_momentum.valley                     # m = 0.6, 50 steps; figures under lightning_logs/valley/
    python -m lit_momentum.valley --momentum 0.45 --steps 200 --out /tmp/valley --no-gif

The valley is ``y = 0.2 (x - 0.5)^2`` on ``x = 0, 0.01, ..., 0.99`` with ``2e-3`` added at index 25. Each step the
ball looks at the slope to its right neighbour and moves one index right while that slope (plain) or the velocity
``v = m v + (1 - m) g`` (momentum) is negative. That is the article's formula: SGD's rule with ``dampening = m``, and
Adam's first moment with ``beta1 = m`` (``torch.optim.SGD``'s default, ``v = m v + g``, is ``1 / (1 - m)`` times
larger on a steady slope; see ``python -m lit_momentum.families``).
"""

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from matplotlib.animation import FuncAnimation, PillowWriter

from lit_momentum.arguments import OneLineParser
from lit_momentum.plotting import plt
from lit_momentum.runs import RunLogger, check_place

BUMP = 25
SWEEP = [round(0.1 * i, 1) for i in range(10)]
HOLD = 12  # frames the animation stays on its last step before it loops


def make_valley() -> tuple[torch.Tensor, torch.Tensor]:
    """The article's curve: ``x`` (100,) and ``y`` (100,), float32, with the bump at index 25."""
    x = torch.arange(0, 1, 1e-2)
    y = 0.2 * (x - 0.5) ** 2
    y[BUMP] += 2e-3
    return x, y


def slopes(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Slope from each point to its right neighbour, (99,)."""
    return (y[1:] - y[:-1]) / (x[1:] - x[:-1])


def roll(x: torch.Tensor, y: torch.Tensor, momentum: float, steps: int) -> list[int]:
    """The ball's index after each of ``steps`` steps (``path[0] = 0``). ``momentum = 0`` is the plain ball."""
    g = slopes(x, y).tolist()
    pos, v, path = 0, 0.0, [0]
    for _ in range(steps):
        if pos < len(g):
            v = momentum * v + (1 - momentum) * g[pos]
            if v < 0:
                pos += 1
        path.append(pos)
    return path


def ball_view(x: torch.Tensor, y: torch.Tensor, momentum: float) -> torch.Tensor:
    """The curve rebuilt from the smoothed slopes, (99,) at ``x[1:]``, starting from ``y[0]``: what the ball sees."""
    v, view = 0.0, [y[0].item()]
    for gi, dx in zip(slopes(x, y).tolist(), (x[1:] - x[:-1]).tolist()):
        v = momentum * v + (1 - momentum) * gi
        view.append(view[-1] + v * dx)
    return torch.tensor(view[1:])


def decay(momentum: float, n: int = 9) -> list[float]:
    """Weight of the gradient ``i`` steps back in the velocity, ``m^i`` for i = 1..n."""
    return [momentum**i for i in range(1, n + 1)]


@dataclass
class Ball:
    momentum: float
    stop_index: int
    stop_x: float
    passed_bump: bool


def ball(x: torch.Tensor, path: list[int], momentum: float) -> Ball:
    return Ball(momentum, path[-1], round(x[path[-1]].item(), 2), path[-1] > BUMP)


def plot_valley(x, y, paths: dict[str, list[int]]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(x, y, c="0.6", lw=1.5, label="valley")
    ax.annotate("bump", (x[BUMP], y[BUMP]), xytext=(0, 14), textcoords="offset points", ha="center", fontsize=8,
                arrowprops=dict(arrowstyle="-", color="0.5"))
    for (name, path), color, lift in zip(paths.items(), ("C3", "C0"), (0.0, 0.002)):
        stop = path[-1]
        ax.plot(x[: stop + 1], y[: stop + 1] + lift, c=color, lw=3, alpha=0.8, label=f"{name}: path")
        ax.scatter([x[stop]], [y[stop] + lift], s=90, c=color, zorder=3, edgecolor="k")
        ax.annotate(f"{name} stops at {stop}", (x[stop], y[stop] + lift), xytext=(10, 10),
                    textcoords="offset points", color=color, fontsize=9)
    ax.set(xlabel="x", ylabel="y", title=f"{len(next(iter(paths.values()))) - 1} steps down the valley")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return fig


def plot_ball_view(x, y, view: torch.Tensor, momentum: float) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(x, y, c="0.6", lw=1.5, label="the valley")
    ax.plot(x[1:], view, c="C0", lw=2, label=f"what the ball sees (slopes smoothed, m = {momentum:g})")
    ax.axvline(x[BUMP], c="C3", ls=":", lw=1, label="bump")
    ax.set(xlabel="x", ylabel="y", title="Momentum smooths the slope: the bump is gone")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_decay(momentum: float) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    powers, weights = list(range(1, 10)), decay(momentum)
    ax.plot(powers, weights, "o-", c="C0")
    for i, w in zip(powers, weights):
        ax.annotate(f"{w:.3f}", (i, w), xytext=(0, 7), textcoords="offset points", ha="center", fontsize=8)
    ax.set(xlabel="steps back, i", ylabel="weight  m^i", title=f"How fast old gradients fade (m = {momentum:g})")
    fig.tight_layout()
    return fig


def plot_sweep(rows: list[Ball], steps: int) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 3.5))
    colors = ["C0" if r.passed_bump else "C3" for r in rows]
    ax.bar([r.momentum for r in rows], [r.stop_index for r in rows], width=0.07, color=colors)
    ax.axhline(BUMP, c="k", ls=":", lw=1)
    ax.text(0.0, BUMP + 1, "bump", fontsize=8)
    ax.set(xlabel="momentum m", ylabel=f"index after {steps} steps", xticks=[r.momentum for r in rows],
           title="Where the ball ends (blue: over the bump)")
    fig.tight_layout()
    return fig


def heading(paths: dict[str, list[int]], t: int) -> str:
    return f"step {t}: " + ", ".join(f"{name} at index {path[t]}" for name, path in paths.items())


def animation(x, y, paths: dict[str, list[int]], hold: int = HOLD) -> FuncAnimation:
    """The balls rolling step by step, each with its path so far; the last step stays ``hold`` frames more. Saved
    as a GIF by ``run``; in a notebook ``HTML(animation(...).to_jshtml())`` plays it."""
    fig, ax = plt.subplots(figsize=(6, 3.2), dpi=80)
    ax.plot(x, y, c="0.6", lw=1.5)
    ax.annotate("bump", (x[BUMP], y[BUMP]), xytext=(0, 14), textcoords="offset points", ha="center", fontsize=8,
                arrowprops=dict(arrowstyle="-", color="0.5"))
    colors, lifts = ("C3", "C0"), (0.0, 0.002)  # the momentum ball's path drawn just above the plain one's
    trails = {n: ax.plot([], [], c=c, lw=3, alpha=0.5)[0] for n, c in zip(paths, colors)}
    dots = {n: ax.plot([], [], "o", ms=11, c=c, mec="k", label=n)[0] for n, c in zip(paths, colors)}
    ax.set(xlabel="x", ylabel="y")
    ax.legend(loc="upper right", fontsize=8)
    steps = len(next(iter(paths.values())))
    title = ax.set_title(heading(paths, steps - 1), fontsize=10)
    fig.tight_layout()  # (with the longest title in place)

    def frame(t: int) -> list:
        t = min(t, steps - 1)
        for (name, path), lift in zip(paths.items(), lifts):
            i = path[t]
            trails[name].set_data(x[: i + 1], y[: i + 1] + lift)
            dots[name].set_data([x[i]], [y[i] + lift])
        title.set_text(heading(paths, t))
        return [*trails.values(), *dots.values(), title]

    anim = FuncAnimation(fig, frame, frames=steps + hold, blit=False)
    plt.close(fig)  # (a notebook would show the still figure too)
    return anim


def animate(x, y, paths: dict[str, list[int]], out: Path) -> None:
    """Write the animation as a GIF (8 frames a second)."""
    animation(x, y, paths).save(out, writer=PillowWriter(fps=8))


def run(momentum: float, steps: int, out: Path | None, gif: bool) -> dict:
    """Roll both balls, sweep the momentum, write figures, JSON and TensorBoard images; return the summary."""
    x, y = make_valley()
    logger = RunLogger("lightning_logs", name="valley", default_hp_metric=False) if out is None else None
    out = Path(logger.log_dir) if logger else out
    if (out / "valley.json").exists():
        raise ValueError(f"--out {out} already holds a valley run: choose another directory")
    out.mkdir(parents=True, exist_ok=True)
    paths = {"plain": roll(x, y, 0.0, steps), f"momentum {momentum:g}": roll(x, y, momentum, steps)}
    balls = {"plain": ball(x, paths["plain"], 0.0), "momentum": ball(x, paths[f"momentum {momentum:g}"], momentum)}
    sweep = [ball(x, roll(x, y, m, steps), m) for m in SWEEP]
    crossing = [r.momentum for r in sweep if r.passed_bump]
    summary = dict(steps=steps, bump_index=BUMP, **{k: asdict(b) for k, b in balls.items()},
                   sweep=[asdict(r) for r in sweep], smallest_crossing_momentum=min(crossing, default=None))
    figures = {"valley": plot_valley(x, y, paths),
               "ball_view": plot_ball_view(x, y, ball_view(x, y, momentum), momentum),
               "decay": plot_decay(momentum), "sweep": plot_sweep(sweep, steps)}
    writer = logger.experiment if logger else None
    for name, fig in figures.items():
        fig.savefig(out / f"{name}.png", dpi=110)
        if writer is not None:
            writer.add_figure(f"valley/{name}", fig, close=False)
        plt.close(fig)
    if gif:
        animate(x, y, paths, out / "valley.gif")
    (out / "valley.json").write_text(json.dumps(summary, indent=2))
    if writer is not None:
        writer.flush()
    summary["out"] = str(out)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(prog="python -m lit_momentum.valley", description=__doc__)
    parser.add_argument("--momentum", type=float, default=0.6,
                        help="momentum of the second ball, in [0, 1) (default %(default)s)")
    parser.add_argument("--steps", type=int, default=50, help="steps each ball takes, > 0 (default %(default)s)")
    parser.add_argument("--out", type=Path, help="output directory (default: a new run under lightning_logs/valley)")
    parser.add_argument("--no-gif", action="store_true", help="skip the animation")
    args = parser.parse_args(argv)
    if not 0 <= args.momentum < 1:
        parser.error(f"--momentum must be in [0, 1), got {args.momentum}")
    if args.steps <= 0:
        parser.error(f"--steps must be > 0, got {args.steps}")
    try:
        check_place(args.out or Path("lightning_logs"), "--out")
        s = run(args.momentum, args.steps, args.out, not args.no_gif)
    except ValueError as err:
        sys.exit(f"error: {err}")
    for name in ("plain", "momentum"):
        b = s[name]
        verdict = "over the bump" if b["passed_bump"] else "stuck before the bump"
        print(f"{name:>8} (m = {b['momentum']:g}): index {b['stop_index']} (x = {b['stop_x']}), {verdict}")
    print(f"smallest momentum in 0.0..0.9 that crosses the bump: {s['smallest_crossing_momentum']}")
    print(f"figures and valley.json in {s['out']}")


if __name__ == "__main__":
    main()
