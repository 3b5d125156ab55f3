"""The LightningModule base every model here shares: each step's values kept on the device and handed to
``end_epoch`` once per epoch, the network's random numbers from ``(seed, epoch)``, and the data module's config saved
in checkpoints. ``MomentumModule`` (one run) and ``GridModule`` (a grid of runs) build on it."""

import os
from collections.abc import Iterator
from typing import Any

import lightning as L
from torch import Tensor

from lit_momentum.nets import net_config
from lit_momentum.schedules import schedule_config
from lit_momentum.steps import STEPS_PER_CALL, default_transfer, next_batch, same_step_counts, takes_own_steps
from lit_momentum.streams import RandomStreams, data_seed


class NonFiniteLossError(RuntimeError):
    """The loss became inf or nan, or negative (which BCE and cross-entropy cannot be): training stops (checked once
    per epoch, from the step losses)."""


class EpochEndModule(L.LightningModule):
    """Keeps each step's values on the device (``self.seen``) and hands them to ``end_epoch`` once per epoch.

    ``end_epoch`` runs right after the epoch's last step, not in ``on_train_epoch_end``: Lightning runs that hook
    after the progress bar's, which would then show the previous epoch's numbers. A ``self.log`` call or a metric
    update costs more than a step's arithmetic here, and reading a value would sync with the device.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[Tensor, ...]] = []  # this epoch's step values, still on the device
        self.data_config: dict[str, Any] | None = None  # the data module's class path and options (set by the CLI)
        self.run_config: str | None = None  # every option of the command, as YAML (set by the CLI)
        self.streams = RandomStreams(self.run_seeds())  # the data's random numbers and each run's, apart

    def run_seeds(self) -> list[int]:
        """The seed of each run this module trains (its network's random draws come from (seed, epoch))."""
        return [int(os.environ.get("PL_GLOBAL_SEED", 0))]  # --seed_everything, as Lightning records it

    def on_fit_start(self) -> None:
        self.streams = RandomStreams(self.run_seeds(), self.device)  # on the device: its generator is the network's
        self.first_epoch = True  # of this fit (a continued run's too)

    def on_train_epoch_start(self) -> None:
        """Random numbers from (seed, epoch) (``lit_momentum.streams``): a shuffling loader's order, a transform's
        noise and each run's dropout are the same in a grid point and its run, continued or not. Lightning makes the
        first epoch's loader iterator before this hook (which draws from the global generator: its workers' seed)
        and the others' after it: the first is made again here, after the seeding, as the others are."""
        self.streams.start_epoch(self.current_epoch, data_seed(self.trainer.datamodule), self.trainer.train_dataloader)
        if self.first_epoch:
            self.first_epoch = False
            iter(self.trainer.fit_loop._data_fetcher)  # (Lightning's own call, at its own place for later epochs)

    def save_net_config(self) -> None:
        """Record the network (and the scheduler) as its class path and options (``hparams.net``): checkpoints and
        hparams.yaml hold data, not code, and a continued or tested run rebuilds the network from them."""
        self.hparams["net"] = net_config(self.hparams["net"])
        if self.hparams.get("lr_scheduler") is not None:  # the scheduler likewise (lit_momentum.schedules)
            self.hparams["lr_scheduler"] = schedule_config(self.hparams["lr_scheduler"])

    def schedule_length(self) -> int:
        """The run's length as its scheduler steps (OneCycleLR's total_steps when not given): epochs, or steps."""
        if self.hparams.lr_scheduler_interval == "step":
            return int(self.trainer.estimated_stepping_batches)
        return self.trainer.max_epochs

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.data_config:  # so that a continued or tested run gets the same data back, whatever the data module
            checkpoint["data_config"] = self.data_config
        if self.run_config:  # so that `--ckpt_path CKPT` alone continues with every option (trainer, checkpoint, ...)
            checkpoint["run_config"] = self.run_config

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning sets _current_fx_name before and after every hook it calls, about 45 times a step; the checks of
        # nn.Module.__setattr__ (parameter? buffer? submodule?) made that 0.1 ms a step on a 2-core CPU. A string
        # needs none of them (Lightning's own result metrics skip them the same way).
        if name == "_current_fx_name":
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def setup(self, stage: str) -> None:
        if stage == "fit" and takes_own_steps(self.trainer):  # several steps per Lightning step (lit_momentum.steps)
            self.automatic_optimization = False
            self.default_transfer = default_transfer(self)  # no batch hook of its own (asked once per fit)
            self.training_step = self.steps  # Lightning reads its signature: it hands over its dataloader_iter

    def batch_loss(self, batch: Any) -> Tensor:
        """One batch's loss to minimise, the step's values kept in ``self.seen``."""
        raise NotImplementedError

    def step_schedule(self, interval: str) -> None:
        """Step the run's scheduler if it steps at this interval (``step`` or ``epoch``)."""
        scheduler = self.lr_schedulers()
        if scheduler is not None and self.hparams.lr_scheduler_interval == interval:
            scheduler.step()

    def steps(self, dataloader_iter: Iterator) -> None:
        """Up to ``STEPS_PER_CALL`` optimizer steps on the epoch's next batches, each the one Lightning's automatic
        step takes (zero the gradients, one backward through the precision plugin, ``optimizer.step``); the scheduler
        stepped where Lightning steps it (after a step, or after the epoch's last), a budget in steps kept."""
        max_steps = self.trainer.max_steps
        for _ in range(STEPS_PER_CALL):
            if dataloader_iter.done or 0 < max_steps <= self.global_step:
                break
            try:
                batch = next_batch(self, dataloader_iter, self.default_transfer)
            except StopIteration:  # a loader without a length: its end
                break
            self.take_step(self.batch_loss(batch))
        if dataloader_iter.done:
            self.step_schedule("epoch")

    def take_step(self, loss: Tensor) -> None:
        """One optimizer step of the module's own, as Lightning's automatic step takes it (zero the gradients, one
        backward through the precision plugin, ``optimizer.step``), then a scheduler that steps every step."""
        opt = self.optimizers()
        opt.zero_grad()
        self.manual_backward(loss)
        opt.step()
        self.step_schedule("step")

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        same_step_counts(checkpoint)  # written by Lightning's steps or a module's own, continued either way

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if batch_idx + 1 == self.trainer.num_training_batches:
            self.end_epoch()

    def on_train_epoch_end(self) -> None:
        if self.seen:  # an epoch cut short (max_steps, a callback's stop) still gets its metrics
            self.end_epoch()

    def end_epoch(self) -> None:
        raise NotImplementedError
