"""Several optimizer steps per Lightning step: Lightning's fixed cost per step (its loop, hooks and callbacks, about
0.65 ms on a 2-core CPU: a fifth of a small model's step, docs/performance.md) paid once for up to ``STEPS_PER_CALL``.

``EpochEndModule.steps`` takes them through Lightning's own API for a step that reads its batches itself
(``training_step(dataloader_iter)``) under manual optimization, each step the one Lightning's automatic step takes.
Where that cannot hold, ``takes_own_steps`` says no and Lightning steps as usual.
"""

from collections.abc import Iterator
from typing import Any

import lightning as L
from lightning.fabric.utilities.apply_func import move_data_to_device
from lightning.pytorch.plugins import Precision
from lightning.pytorch.strategies import SingleDeviceStrategy
from lightning.pytorch.utilities.model_helpers import is_overridden

STEPS_PER_CALL = 16  # optimizer steps one Lightning step takes where the module takes its own steps
BATCH_HOOKS = ("on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer")


def takes_own_steps(trainer: L.Trainer) -> bool:
    """Whether a fit may take several steps per Lightning step: one device (DDP's reducer expects one backward per
    forward of its wrapper), 32-bit (another precision's context is Lightning's around the forward only: the batches
    would be read and the steps taken inside it), no gradient accumulation or clipping (Lightning does both only in
    its own loop) and validation at the epochs' ends (Lightning counts ``val_check_interval`` in its own steps)."""
    return (isinstance(trainer.strategy, SingleDeviceStrategy) and type(trainer.precision_plugin) is Precision
            and trainer.accumulate_grad_batches == 1 and not trainer.gradient_clip_val
            and isinstance(trainer.val_check_interval, float) and trainer.val_check_interval == 1.0)


def default_transfer(module: L.LightningModule) -> bool:
    """Whether readying a batch is Lightning's default transfer alone: neither the module nor the data module
    overrides a batch-transfer hook (under the 32-bit precision ``takes_own_steps`` asks for, the input conversion is
    the identity). Asked once per fit: Lightning's dispatch of the three hooks (which object owns each, a profiler
    context each) was ~80 us a step, 2-3 % of the MNIST-1D MLP's grid step on a 2-core CPU."""
    owners = [obj for obj in (module, module.trainer.datamodule) if obj is not None]
    return not any(is_overridden(hook, obj) for hook in BATCH_HOOKS for obj in owners)


def next_batch(module: L.LightningModule, dataloader_iter: Iterator, default_transfer: bool = False) -> Any:
    """The iterator's next batch, readied as Lightning readies a batch it fetches itself (the precision's input
    conversion, the batch-transfer hooks, the device); with ``default_transfer`` (the function of that name says
    when): what the default hooks do, ``move_data_to_device``, called directly."""
    batch, _, _ = next(dataloader_iter)
    if default_transfer:
        return move_data_to_device(batch, module.trainer.strategy.root_device)
    batch = module.trainer.precision_plugin.convert_input(batch)
    batch = module._on_before_batch_transfer(batch, dataloader_idx=0)
    return module.trainer.strategy.batch_to_device(batch, dataloader_idx=0)


def same_step_counts(checkpoint: dict[str, Any]) -> None:
    """Lightning counts a fit's automatic steps and a module's own apart (the trainer's ``global_step`` is the count
    of the way in use), and a run steps either way: both counts are set to the steps taken, so that a checkpoint
    continues whichever way it is continued (one written before, or under DDP)."""
    loop = checkpoint.get("loops", {}).get("fit_loop", {})
    automatic = loop.get("epoch_loop.automatic_optimization.optim_progress", {}).get("optimizer", {}).get("step")
    manual = loop.get("epoch_loop.manual_optimization.optim_step_progress")
    if automatic and manual:
        steps = max(automatic["total"]["completed"], manual["total"]["completed"])
        for count in (automatic["total"], manual["total"]):
            count.update(ready=steps, completed=steps)
