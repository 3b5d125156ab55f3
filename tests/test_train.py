"""Training through the real entry point (``lit_momentum.command.main``, in process): parity and resume.

Bugs these exist to catch: manual and builtin momentum apart; a resume that is not exact; metrics that a callback
cannot monitor or that the bar shows an epoch late; on a GPU, data or buffers off the device or a host sync inside a
step.
"""

from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from lightning.pytorch.loggers import TensorBoardLogger

from lit_momentum import epochs
from lit_momentum.command import main
from lit_momentum.data import RandomDataModule
from lit_momentum.model import MomentumModule
from tests.conftest import CONFIGS, TINY_DATA, assert_same_state, load_ckpt, run_dirs, scalars


def train(tiny: list[str], *args: str) -> None:
    main([*tiny, *args])


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_manual_and_builtin_log_the_same_losses_and_end_equal(tiny: list[str], tmp_path: Path,
                                                              precision: str) -> None:
    for variant in ("manual", "builtin"):
        train(tiny, "--config", str(CONFIGS / f"{variant}.yaml"), "--config", str(CONFIGS / "debug.yaml"),
              "--precision", precision)
    manual, builtin = (tmp_path / "lightning_logs" / f"{TINY_DATA}_{v}_m0.9_lr1e-05" / "version_0"
                       for v in ("manual", "builtin"))
    loss_m, loss_b = scalars(manual)["train/loss_step"], scalars(builtin)["train/loss_step"]
    assert len(loss_m) == 5 * 4 and [s for s, _ in loss_m] == [s for s, _ in loss_b]
    assert max(abs(a - b) for (_, a), (_, b) in zip(loss_m, loss_b)) < 1e-6
    assert loss_m[0][1] != loss_m[-1][1]  # it trained
    ckpt_m, ckpt_b = load_ckpt(manual / "checkpoints/last.ckpt"), load_ckpt(builtin / "checkpoints/last.ckpt")
    assert len(ckpt_m["optimizer_states"][0]["state"]) == 4  # a velocity buffer per weight and bias, saved
    assert_same_state(ckpt_m, ckpt_b)


@pytest.mark.parametrize("variant", ["manual", "builtin"])
def test_resume_equals_straight_run(tiny: list[str], tmp_path: Path, variant: str) -> None:
    config = ["--config", str(CONFIGS / f"{variant}.yaml"), "--config", str(CONFIGS / "debug.yaml")]
    straight = [*tiny, "--trainer.default_root_dir", str(tmp_path / "straight")]
    split = [*tiny, "--trainer.default_root_dir", str(tmp_path / "split")]
    main([*straight, *config, "--max_epochs", "4"])
    main([*split, *config, "--max_epochs", "2"])
    (first,) = run_dirs(tmp_path / "split")
    # resume with no --config at all: the checkpoint's own settings (manual or builtin) are used
    main([*split, "--max_epochs", "4", "--ckpt_path", str(first / "checkpoints/last.ckpt")])
    assert run_dirs(tmp_path / "split") == [first], "a resumed run keeps writing into its own directory"
    (whole,) = run_dirs(tmp_path / "straight")
    assert_same_state(load_ckpt(whole / "checkpoints/last.ckpt"), load_ckpt(first / "checkpoints/last.ckpt"))
    assert load_ckpt(first / "checkpoints/last.ckpt")["epoch"] == 3
    assert scalars(whole)["train/loss_step"] == scalars(first)["train/loss_step"]


class OnDeviceWithoutSyncs(L.Callback):
    """Checks the GPU path while it trains (CUDA only): every batch arrives on the device, the weights and optimizer
    buffers live there, and no step, batch fetch or batch transfer synchronises with the host. The sync check is on
    from each epoch's start to its last step's end, where the module's epoch end makes its one sync on purpose.
    (Checked after ``fit`` instead, the placement would fail on a GPU even with correct code: Lightning's teardown
    moves everything back to the CPU.)"""

    def __init__(self) -> None:
        self.batches = self.steps = 0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        torch.cuda.set_sync_debug_mode("error")

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, idx: int) -> None:
        assert all(t.is_cuda for t in batch) and all(p.is_cuda for p in pl_module.parameters())
        self.batches += 1

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        assert all(t.is_cuda for state in trainer.optimizers[0].state.values() for t in state.values()
                   if isinstance(t, torch.Tensor))
        self.steps += 1
        if args[-1] + 1 == trainer.num_training_batches:  # the module's epoch end comes next: one sync, wanted
            torch.cuda.set_sync_debug_mode("default")

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("variant", ["manual", "builtin"])
def test_gpu_steps_keep_data_on_device_without_syncs(tmp_path: Path, variant: str) -> None:
    probe = OnDeviceWithoutSyncs()
    trainer = L.Trainer(accelerator="gpu", devices=1, max_epochs=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, callbacks=[probe], default_root_dir=tmp_path)
    trainer.fit(MomentumModule(dim=64, momentum_impl=variant), datamodule=RandomDataModule(dim=64, num_samples=256))
    assert probe.batches == probe.steps == 2 * 4  # the checks ran on every step


def short_run(root: Path, *args: str) -> list[tuple[int, float]]:
    """A 2-epoch debug.yaml run's step losses."""
    main(["--config", str(CONFIGS / "debug.yaml"), "--trainer.default_root_dir", str(root), "--max_epochs", "2",
          "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false", *args])
    return scalars(run_dirs(root)[0])["train/loss_step"]


@pytest.fixture(scope="module")
def plain_losses(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[int, float]]:
    return short_run(tmp_path_factory.mktemp("plain"))  # the same data without a hook of its own


@pytest.mark.parametrize("data", ["DoubledBefore", "DoubledInTransfer", "DoubledAfter"])
def test_a_data_modules_batch_hook_shapes_every_step_as_in_lightnings_own_steps(
        plain_losses: list[tuple[int, float]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: str) -> None:
    """A run takes its own steps (lit_momentum/steps.py) and readies their batches itself, calling Lightning's
    transfer directly where no hook is a module's own: a data module's hook still shapes every step as in the steps
    Lightning takes itself."""
    own = short_run(tmp_path / "own", "--data", f"tests.probe_data.{data}")
    monkeypatch.setattr(epochs, "takes_own_steps", lambda trainer: False)  # Lightning's own steps and hooks
    lightning = short_run(tmp_path / "lightning", "--data", f"tests.probe_data.{data}")
    assert len(own) == 2 * 4 and own == lightning
    assert all(a != b for (_, a), (_, b) in zip(own, plain_losses)), "the hook left a step's batch as it was"


def test_callbacks_can_monitor_the_epoch_loss(tiny: list[str], tmp_path: Path) -> None:
    main([*tiny, "--trainer.default_root_dir", str(tmp_path / "full")])
    losses = [v for _, v in scalars(run_dirs(tmp_path / "full")[0])["train/loss"]]
    low = sorted(losses)
    threshold = (low[1] + low[2]) / 2  # below it: two of the five epochs
    stop = next(epoch for epoch, loss in enumerate(losses) if loss < threshold)
    main([*tiny, "--trainer.default_root_dir", str(tmp_path / "stopped"), "--trainer.callbacks+=EarlyStopping",
          "--trainer.callbacks.monitor=train/loss", f"--trainer.callbacks.stopping_threshold={threshold}"])
    (run,) = run_dirs(tmp_path / "stopped")
    assert [v for _, v in scalars(run)["train/loss"]] == losses[: stop + 1]
    assert load_ckpt(run / "checkpoints/last.ckpt")["epoch"] == stop


class BarMetrics(L.Callback):
    """Reads what the progress bar shows at the end of each epoch (an ordinary callback, as the bar is)."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.losses.append(trainer.progress_bar_metrics["train/loss"])


def test_progress_bar_shows_the_epoch_just_finished(tmp_path: Path) -> None:
    bar = BarMetrics()
    trainer = L.Trainer(max_epochs=4, logger=TensorBoardLogger(tmp_path, name="run"), callbacks=[bar],
                        enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(MomentumModule(dim=64, lr=0.1), datamodule=RandomDataModule(dim=64, num_samples=256))
    shown = [torch.tensor(v, dtype=torch.float32).item() for v in bar.losses]  # (TensorBoard keeps float32)
    assert shown == [v for _, v in scalars(Path(trainer.logger.log_dir))["train/loss"]]


def test_an_epoch_cut_short_by_max_steps_still_logs_its_metrics(tmp_path: Path) -> None:
    trainer = L.Trainer(max_steps=6, logger=TensorBoardLogger(tmp_path, name="run"), enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, log_every_n_steps=1)
    trainer.fit(MomentumModule(dim=64), datamodule=RandomDataModule(dim=64, num_samples=256))  # 4 steps an epoch
    logged = scalars(Path(trainer.logger.log_dir))
    assert [s for s, _ in logged["train/loss_step"]] == list(range(6))
    assert [s for s, _ in logged["train/loss"]] == [3, 5]  # the full epoch, then the 2 steps of the cut one
