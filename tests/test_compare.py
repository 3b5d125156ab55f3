"""``python -m lit_momentum.compare``: a tiny comparison writes every file, with numbers that make sense.

Bugs these exist to catch: a variant trained on other data or weights than the others (manual and builtin apart); a
missing file or column; a diverging variant that crashes the job.
"""

import csv
import math
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from lit_momentum.compare import VARIANTS
from lit_momentum.compare import main as compare_main
from lit_momentum.curves import curve_stats
from tests.conftest import CONFIGS, ROOT, TINY_DATA, refusal


def test_curve_stats_by_hand() -> None:
    stats = curve_stats([1.0, 0.8, 0.9, 0.5], threshold=0.85)
    assert stats["final_loss"] == 0.5 and stats["best_loss"] == 0.5 and stats["epoch_below_threshold"] == 1
    assert stats["ping_pong"] == 1 / 3  # one rise in three changes
    assert math.isclose(stats["tv_over_net"], (0.2 + 0.1 + 0.4) / 0.5)


@pytest.mark.slow
def test_tiny_compare_writes_every_file(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    proc = subprocess.run(
        [sys.executable, "-m", "lit_momentum.compare", "--config", str(CONFIGS / "debug.yaml"), "--out", str(out),
         "--max_epochs", "4", "--trainer.enable_progress_bar", "false"],
        cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(out / "summary.csv") as f:
        rows = {r["variant"]: r for r in csv.DictReader(f)}
    assert list(rows) == VARIANTS
    for row in rows.values():
        for key in ("final_loss", "best_loss", "ping_pong", "wall_s"):
            assert math.isfinite(float(row[key])), (row["variant"], key)
    assert abs(float(rows["manual"]["final_loss"]) - float(rows["builtin"]["final_loss"])) < 1e-6
    assert rows["sgd_equiv"]["run"] == f"{TINY_DATA}_sgd_lr0.0001"  # lr / (1 - 0.9)
    runs = sorted(p.parent.name for p in out.glob("*/version_0"))  # one TensorBoard run per variant, in OUT itself
    assert runs == sorted(r["run"] for r in rows.values()) and not (out / "lightning_logs").exists()
    assert "largest |manual - builtin| epoch-loss difference" in proc.stdout
    text = proc.stdout + proc.stderr  # nothing repeated once per variant: no summaries, no set-up lines, no noise
    assert not [s for s in ("Total params", "GPU available", "Seed set", "litlogger", "LeafSpec") if s in text], text
    with Image.open(out / "loss_curves.png") as img:
        assert img.width > 400 and img.height > 300


def test_unknown_variant_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    said = refusal(compare_main, ["--variants", "sgd", "rmsprop", "--out", str(tmp_path / "cmp")])
    assert "rmsprop" in said and "allowed: sgd, sgd_equiv" in said
    assert not (tmp_path / "cmp").exists()


def test_variants_that_diverge_are_reported_and_the_figure_still_drawn(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    compare_main(["--config", str(CONFIGS / "debug.yaml"), "--variants", "sgd", "manual", "--model.lr", "10",
                  "--model.weight_decay", "100", "--max_epochs", "6", "--out", str(out),
                  "--trainer.enable_progress_bar", "false"])
    with open(out / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["variant"] for r in rows] == ["sgd", "manual"] and all(r["diverged_epoch"] for r in rows)
    with Image.open(out / "loss_curves.png") as img:
        assert img.width > 400
