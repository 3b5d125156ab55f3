"""The momentum formulas (``python -m lit_momentum.families``) through the real command, and the article's
formula as a grid option (``--dampening momentum``).

Bugs these exist to catch: the article's family trained with PyTorch's formula (dampening not m); a family or an
axis missing from the figure or the table; a spread that cannot tell one curve from several.
"""

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lit_momentum.families import main as families_main
from lit_momentum.families import spread
from tests.conftest import run_sweep, spelled


def test_dampening_momentum_gives_each_point_its_own_momentum_as_dampening(tiny: list[str], tmp_path: Path) -> None:
    rows = run_sweep(tiny, tmp_path / "grid", "--lr", "0.1", "--momentum", "0", "0.5", "0.9", "--dampening",
                     "momentum", "--max_epochs", "1")
    assert [(r["momentum"], r["dampening"]) for r in rows] == [("0.0", "0.0"), ("0.5", "0.5"), ("0.9", "0.9")]
    assert spelled(rows[1]["run"]) == spelled("lr0.1_m0.5_damp0.5_seed0")


def test_the_spread_is_zero_for_one_curve_and_grows_with_the_gap() -> None:
    x = np.array([0.1, 1.0, 10.0])
    same = {0.0: (x, np.array([1.0, 0.1, 0.01])), 0.9: (x * 10, np.array([0.1, 0.01, 0.001]))}  # one curve
    apart = {0.0: (x, np.array([1.0, 0.1, 0.01])), 0.9: (x, np.array([10.0, 1.0, 0.1]))}  # a decade apart
    assert spread(same, log=True) == 0.0 and abs(spread(apart, log=True) - 1.0) < 1e-12


@pytest.mark.slow
def test_the_quick_study_draws_every_family_on_both_axes(tmp_path: Path) -> None:
    families_main(["--out", str(tmp_path), "--quick", "--sources", "random", "--trainer.enable_progress_bar",
                   "false"])
    with open(tmp_path / "families.csv") as f:
        table = list(csv.DictReader(f))
    families = ("pytorch", "article", "adam", "rmsprop", "nadam", "lion")
    assert [(r["family"], r["axis"]) for r in table] == [(f, a) for f in families for a in ("effective", "lr")]
    with open(tmp_path / "random" / "article" / "summary.csv") as f:
        assert all(r["dampening"] == r["momentum"] for r in csv.DictReader(f))
    for family, optimizer in (("adam", "adam"), ("rmsprop", "RMSprop"), ("nadam", "NAdam"), ("lion", "Lion")):
        with open(tmp_path / "random" / family / "summary.csv") as f:
            assert {r["optimizer"] for r in csv.DictReader(f)} == {optimizer}, family
    assert {r["predicted"] for r in table} == {"effective", "lr"}
    with Image.open(tmp_path / "families_random.png") as img:
        assert img.width > 1000 and img.height > 600
