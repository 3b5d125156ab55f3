"""Averages (``lit_momentum.averages``): ``val/loss`` and ``test/loss`` are means over samples whatever the batch sizes,
added up in float64 whatever ``--precision``; a grid point's equal to its ``train.py`` run's.

Bugs these exist to catch: a held-out loss that averages batch means (a last batch of 36 weighing as one of 64:
torchmetrics 1.9's ``MeanMetric(nan_strategy="disable")`` ignores ``weight=``); a mean rounded to bf16 under
``--precision bf16-true`` (the metric's state converted with the model); ``test/loss`` moving with
``--data.eval_batch_size``; a single run and a grid that average in two ways.
"""

from pathlib import Path

import pytest
import torch

from lit_momentum.cli import MomentumCLI
from lit_momentum.command import build
from lit_momentum.command import main as train_main
from lit_momentum.data import RandomDataModule
from lit_momentum.loss import loss_and_predictions
from lit_momentum.model import MomentumModule
from tests.conftest import CONFIGS, grid_run, run_dirs, run_sweep, scalars

UNEVEN = ["--data.val_samples", "100", "--data.eval_batch_size", "64"]  # validation batches of 64 and 36


def by_hand(ckpt: Path, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """A checkpoint's mean loss and accuracy over the samples (x, y), each sample's loss as the model computes it."""
    model = MomentumModule.load_from_checkpoint(ckpt, map_location="cpu", weights_only=True).eval()
    with torch.no_grad():
        losses, preds = loss_and_predictions(model.net(x.to(model.dtype)), y, reduction="none")
    return losses.double().mean().item(), (preds == y).double().mean().item()


def test_validation_loss_is_the_mean_over_samples_with_an_uneven_last_batch(tiny: list[str], tmp_path: Path) -> None:
    train_main([*tiny, *UNEVEN, "--max_epochs", "2", "--model.lr", "0.5"])
    (run,) = run_dirs(tmp_path)
    x, y = RandomDataModule(dim=64, num_samples=256, val_samples=100).splits["val"]
    ckpt = run / "checkpoints" / "last.ckpt"
    loss, acc = by_hand(ckpt, x, y)
    batch_means = [by_hand(ckpt, x[i:i + 64], y[i:i + 64])[0] for i in (0, 64)]  # of 64 and of 36
    assert abs(sum(batch_means) / 2 - loss) > 1e-3, "the test needs batches whose plain mean is another number"
    logged = scalars(run)
    assert abs(logged["val/loss"][-1][1] - loss) <= 1e-6
    assert abs(logged["val/acc"][-1][1] - acc) <= 1e-6


def evaluated(ckpt: Path, *args: str) -> dict[str, float]:
    """``python train.py test --ckpt_path CKPT ARGS``'s metrics, unrounded (the command prints 4 digits)."""
    cli, _ = build(MomentumCLI, ["--ckpt_path", str(ckpt), "--trainer.enable_progress_bar", "false", *args], "test")
    (results,) = cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=str(ckpt), weights_only=True,
                                  verbose=False)
    return results


def test_test_loss_does_not_depend_on_the_evaluation_batch_size(tiny: list[str], tmp_path: Path) -> None:
    train_main([*tiny, "--config", str(CONFIGS / "mnist1d.yaml"), "--max_epochs", "1", "--data.num_samples", "1300"])
    (run,) = run_dirs(tmp_path)
    ckpt = run / "checkpoints" / "last.ckpt"
    whole, uneven = evaluated(ckpt), evaluated(ckpt, "--data.eval_batch_size", "64")  # 260 test signals: 4 x 64 + 4
    cli, _ = build(MomentumCLI, ["--ckpt_path", str(ckpt)], "test")
    cli.datamodule.setup("test")
    loss, acc = by_hand(ckpt, *cli.datamodule.splits["test"])
    assert abs(whole["test/loss"] - loss) <= 1e-6 and abs(uneven["test/loss"] - loss) <= 1e-6
    assert whole["test/acc"] == uneven["test/acc"] == pytest.approx(acc, abs=1e-9)


def test_a_bf16_runs_averages_are_not_bf16_numbers_and_equal_its_grid_points(tiny: list[str], tmp_path: Path) -> None:
    """Under bf16-true every per-sample loss is a bf16 number, their mean is not: val/loss and the epoch train/loss of
    a run and of its grid point (the batched path) agree far below bf16's resolution (0.0039 at 0.7)."""
    bf16 = [*tiny, *UNEVEN, "--precision", "bf16-true", "--max_epochs", "2"]
    train_main([*bf16, "--trainer.default_root_dir", str(tmp_path / "run"), "--model.momentum_impl", "manual",
                "--model.lr", "0.3"])
    one = scalars(run_dirs(tmp_path / "run")[0])
    run_sweep(bf16, tmp_path / "grid", "--lr", "0.3", "0.1", "--momentum", "0.9")
    point = scalars(grid_run(tmp_path / "grid", "lr0.3_m0.9_seed0"))
    for tag, within in (("val/loss", 1e-5), ("train/loss", 1e-5)):
        values = [v for _, v in one[tag]]
        assert any(v != torch.tensor(v).bfloat16().item() for v in values), f"{tag} is a bf16 number"
        assert max(abs(a - b) for a, b in zip(values, [v for _, v in point[tag]])) <= within, tag
