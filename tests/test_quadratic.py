"""``python -m lit_momentum.quadratic``: measured iterations against the theory, with bounds that follow from it.

Every error curve is checked at every iteration between two bounds (w_0 = ones, so each eigen-direction holds
1 / sqrt(dim) of ||w_0||, and the two ends of the spectrum are eigenvalues):
- plain GD at 2 / (L + mu): both ends shrink by exactly r = (kappa - 1) / (kappa + 1) a step, the rest faster, so
  sqrt(2 / dim) r^t <= error_t <= r^t;
- heavy ball at its optimum: the direction of L has a double root -r and its error is exactly
  r^t (1 + (1 + r) t) / sqrt(dim) of ||w_0||; no direction does worse than r^t (1 + (1 + r) t).
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from lit_momentum.quadratic import KEYS, eigenvalues, measure, run
from lit_momentum.quadratic import main as quadratic_main
from tests.conftest import ROOT, refusal

DIM, TOL = 100, 1e-6


@pytest.mark.parametrize("kappa", [10, 100, 1000])
def test_every_iterate_lies_between_the_bounds_theory_gives(kappa: float) -> None:
    row, curves, gap = measure(kappa, DIM, TOL)
    gd, momentum, _ = curves.values()
    r = (kappa - 1) / (kappa + 1)
    for t, e in enumerate(gd):
        assert math.sqrt(2 / DIM) * r**t * (1 - 1e-9) <= e <= r**t * (1 + 1e-9), t
    r = (math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1)
    for t, e in enumerate(momentum):
        envelope = r**t * (1 + (1 + r) * t)
        assert envelope / math.sqrt(DIM) * (1 - 1e-9) <= e <= envelope * (1 + 1e-9), t
    assert row["gd_iters"] <= row["gd_theory"] and row["momentum_iters"] > row["momentum_theory"] * 0.8
    assert gap == 0.0, "the hand-written rule and torch.optim.SGD part ways"


def test_the_speedup_grows_like_sqrt_kappa() -> None:
    speedups = [measure(k, DIM, TOL)[0]["speedup"] for k in (10, 100, 1000)]
    assert speedups[0] < speedups[1] < speedups[2]
    # sqrt(kappa) grows 10x per 100x in kappa; the heavy ball's polynomial factor takes a little of it (a log)
    assert 7 < speedups[2] / speedups[0] < 11
    assert all(0.5 * math.sqrt(k) < s < math.sqrt(k) for k, s in zip((10, 100, 1000), speedups))


@pytest.mark.parametrize("kappa, diverges", [(3, False), (10, True), (1000, True)])
def test_the_same_effective_step_without_momentum_diverges_once_kappa_exceeds_4(kappa: float, diverges: bool) -> None:
    """lr / (1 - m) = 1 / (mu sqrt(kappa)) against plain GD's limit 2 / L = 2 / (mu kappa)."""
    row, curves, _ = measure(kappa, DIM, TOL)
    assert row["bigger_step_diverged"] is diverges
    bigger = list(curves.values())[2]
    assert (bigger[-1] > 1e6) is diverges and (bigger[-1] < 1) is not diverges  # it shrinks, just slower


def test_hand_written_rule_equals_torch_sgd_iterate_by_iterate() -> None:
    lam = eigenvalues(100, DIM)
    lr, m = 0.03, 0.8
    assert run(lam, lr, m, TOL, 500, hand_written=True) == run(lam, lr, m, TOL, 500)


@pytest.mark.slow
def test_command_writes_json_figure_and_table(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "lit_momentum.quadratic", "--kappa", "10", "100", "--dim", "20",
                           "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = json.loads((tmp_path / "quadratic.json").read_text())
    assert [list(r) for r in rows] == [KEYS, KEYS] and [r["kappa"] for r in rows] == [10, 100]
    assert all(r["speedup"] == r["gd_iters"] / r["momentum_iters"] for r in rows)
    assert "sqrt(kappa)" in proc.stdout and "diverges" in proc.stdout
    with Image.open(tmp_path / "quadratic.png") as img:
        assert img.width > 800


@pytest.mark.parametrize("args, message", [(["--kappa", "1"], "--kappa"), (["--dim", "1"], "--dim"),
                                           (["--tol", "2"], "--tol")])
def test_bad_options_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    said = refusal(quadratic_main, [*args, "--out", str(tmp_path / "q")])  # exit 1, one line, no usage block
    assert said.startswith(f"error: {message}"), said
    assert not (tmp_path / "q").exists()
