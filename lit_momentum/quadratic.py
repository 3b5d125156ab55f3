"""Momentum's real speed-up, measured against theory: plain gradient descent and heavy ball on a quadratic.

    python -m lit_momentum.quadratic                            # kappa 10, 100, 1000; dim 100; tol 1e-6
    python -m lit_momentum.quadratic --kappa 10 1e4 --dim 50 --out runs/quadratic

``f(w) = 1/2 sum_i lambda_i w_i^2`` in float64, eigenvalues log-spaced over ``[mu, L] = [1, kappa]``, start
``w_0 = (1, ..., 1)``. Counted: iterations until ``||w_t|| / ||w_0|| < tol``.

Why ``torch.optim.SGD(lr, momentum)`` with dampening 0 is Polyak's heavy ball. SGD keeps ``v_{t+1} = m v_t + g_t``
and steps ``w_{t+1} = w_t - lr v_{t+1}``, so ``lr v_t = w_{t-1} - w_t`` and

    w_{t+1} = w_t - lr g_t - m lr v_t = w_t - lr g_t + m (w_t - w_{t-1})

which is the heavy ball with step ``lr`` and momentum ``m`` (its first step, ``v_1 = g_0``, is ``w_{-1} = w_0``).

Theory. Plain GD at its best step ``2 / (L + mu)`` contracts every direction by at most ``(kappa - 1) / (kappa + 1)``
a step. The heavy ball at ``lr = (2 / (sqrt L + sqrt mu))^2``, ``m = ((sqrt kappa - 1) / (sqrt kappa + 1))^2``
contracts by ``r = (sqrt kappa - 1) / (sqrt kappa + 1)``: about ``sqrt(kappa)`` times fewer steps. At these settings
the extreme directions have a double root ``z = +-r``, and from ``w_{-1} = w_0`` their error is exactly
``r^t (1 + (1 - z) t)``: a polynomial factor that makes the measured count exceed the pure rate's. No larger step
can give plain GD that speed: at the momentum run's effective step ``lr / (1 - m) = 1 / (mu sqrt kappa)``, above
GD's limit ``2 / L`` once kappa > 4, the direction of ``L`` grows by ``sqrt(kappa) - 1`` a step.
"""

import json
import math
import sys
from pathlib import Path

import torch

from lit_momentum.arguments import OneLineParser
from lit_momentum.momentum import HandWrittenSGD
from lit_momentum.plotting import plt
from lit_momentum.runs import check_place

KEYS = ["kappa", "gd_iters", "gd_theory", "momentum_iters", "momentum_theory", "speedup", "bigger_step_diverged"]
BLOW_UP = 1e6  # ||w|| / ||w_0|| above this: diverged


def eigenvalues(kappa: float, dim: int) -> torch.Tensor:
    """(dim,) float64, log-spaced from mu = 1 to L = kappa, both ends included."""
    return torch.logspace(0, math.log10(kappa), dim, dtype=torch.float64)


def run(lam: torch.Tensor, lr: float, momentum: float, tol: float, max_iters: int, hand_written: bool = False
        ) -> list[float]:
    """``||w_t|| / ||w_0||`` for t = 0, 1, ... until below ``tol``, above ``BLOW_UP``, or ``max_iters`` steps.

    ``torch.optim.SGD`` with the gradient ``lambda * w``; or (``hand_written``) ``HandWrittenSGD`` (the project's
    velocity rule, then PyTorch's momentum-free SGD), as ``train.py --model.momentum_impl manual`` runs it."""
    w = torch.ones_like(lam, requires_grad=True)
    if hand_written:
        opt = HandWrittenSGD([w], lr=lr, momentum=momentum)
    else:
        opt = torch.optim.SGD([w], lr=lr, momentum=momentum)
    start = w.detach().norm().item()
    errors = [1.0]
    while tol <= errors[-1] <= BLOW_UP and len(errors) <= max_iters:
        w.grad = lam * w.detach()  # the gradient of 1/2 sum lambda_i w_i^2
        opt.step()
        errors.append(w.detach().norm().item() / start)
    return errors


def iterations(errors: list[float], tol: float) -> int | None:
    """The first t with error below tol (None if never)."""
    return next((t for t, e in enumerate(errors) if e < tol), None)


def rates(kappa: float) -> tuple[float, float]:
    """The theory's contraction per step: plain GD's at its best step, the heavy ball's at its best settings."""
    return (kappa - 1) / (kappa + 1), (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)


def measure(kappa: float, dim: int, tol: float) -> tuple[dict, dict[str, list[float]], float]:
    """One kappa: the row of quadratic.json, the three error curves, and the largest gap between the hand-written
    and ``torch.optim.SGD`` momentum runs (relative to ``||w_0||``)."""
    lam = eigenvalues(kappa, dim)
    mu, big = lam.min().item(), lam.max().item()
    gd_rate, hb_rate = rates(kappa)
    gd_theory = math.ceil(math.log(tol) / math.log(gd_rate))
    hb_theory = math.ceil(math.log(tol) / math.log(hb_rate))
    lr, m = (2 / (math.sqrt(big) + math.sqrt(mu))) ** 2, hb_rate ** 2
    cap = 10 * gd_theory
    curves = {"gradient descent, step 2 / (L + mu)": run(lam, 2 / (big + mu), 0.0, tol, cap),
              f"momentum {m:.4g}, lr {lr:.3g}": run(lam, lr, m, tol, cap)}
    hand = run(lam, lr, m, tol, cap, hand_written=True)
    torch_curve = curves[f"momentum {m:.4g}, lr {lr:.3g}"]
    gap = max(abs(a - b) for a, b in zip(hand, torch_curve)) if len(hand) == len(torch_curve) else math.inf
    momentum_iters = iterations(torch_curve, tol)
    bigger = run(lam, lr / (1 - m), 0.0, tol, momentum_iters or cap)  # as many steps as momentum needed
    curves[f"gradient descent at lr / (1 - m) = {lr / (1 - m):.3g}"] = bigger
    gd_iters = iterations(curves["gradient descent, step 2 / (L + mu)"], tol)
    row = dict(kappa=kappa, gd_iters=gd_iters, gd_theory=gd_theory, momentum_iters=momentum_iters,
               momentum_theory=hb_theory, speedup=gd_iters / momentum_iters, bigger_step_diverged=bigger[-1] > BLOW_UP)
    return row, curves, gap


def plot(results: list[tuple[dict, dict[str, list[float]]]], out: Path) -> None:
    fig, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 4.5), squeeze=False)
    for ax, (row, curves) in zip(axes[0], results):
        theory = rates(row["kappa"])  # GD's and momentum's; the bigger step has none
        for k, (label, errors) in enumerate(curves.items()):
            (line,) = ax.plot(errors, lw=1.2, label=label)
            if k < len(theory):  # the theory's pure rate r^t, dashed
                r, t = theory[k], range(len(errors))
                ax.plot(t, [r**i for i in t], "--", lw=0.8, color=line.get_color(), label=f"theory: {r:.4g}^t")
        ax.set(yscale="log", ylim=(1e-8, 1e4), xlabel="iteration", ylabel="||w_t|| / ||w_0||",
               title=f"kappa {row['kappa']:g}: momentum {row['speedup']:.1f}x fewer steps")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = OneLineParser(prog="python -m lit_momentum.quadratic", description=__doc__)
    parser.add_argument("--kappa", type=float, nargs="+", default=[10, 100, 1000],
                        help="condition numbers L / mu (default 10 100 1000)")
    parser.add_argument("--dim", type=int, default=100, help="dimensions of w (default %(default)s)")
    parser.add_argument("--tol", type=float, default=1e-6,
                        help="stop when ||w|| / ||w_0|| is below this (default %(default)s)")
    parser.add_argument("--out", type=Path, default=Path("lightning_logs/quadratic"),
                        help="output directory (default: lightning_logs/quadratic)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if any(not 1 < k < 1e12 for k in args.kappa):
        parser.error(f"--kappa: every value must be > 1 and < 1e12, got {' '.join(f'{k:g}' for k in args.kappa)}")
    if args.dim < 2:
        parser.error(f"--dim must be an integer >= 2 (the two ends of the spectrum), got {args.dim}")
    if not 0 < args.tol < 1:
        parser.error(f"--tol must be in (0, 1), got {args.tol:g}")
    try:
        check_place(args.out, "--out")
    except ValueError as err:
        sys.exit(f"error: {err}")
    results, rows = [], []
    print(f"{'kappa':>8}{'GD iters':>10}{'theory':>8}{'momentum':>10}{'theory':>8}{'speedup':>9}{'sqrt(kappa)':>13}"
          f"{'bigger step':>13}{'hand vs torch':>15}")
    for kappa in args.kappa:
        row, curves, gap = measure(kappa, args.dim, args.tol)
        results.append((row, curves))
        rows.append(row)
        print(f"{kappa:>8g}{row['gd_iters']:>10}{row['gd_theory']:>8}{row['momentum_iters']:>10}"
              f"{row['momentum_theory']:>8}{row['speedup']:>9.1f}{math.sqrt(kappa):>13.1f}"
              f"{'diverges' if row['bigger_step_diverged'] else 'converges':>13}{gap:>15.1g}")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "quadratic.json").write_text(json.dumps(rows, indent=2))
    plot(results, args.out / "quadratic.png")
    print(f"\nquadratic.json and quadratic.png in {args.out}")


if __name__ == "__main__":
    main()
