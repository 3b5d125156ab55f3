"""Any network as a LightningModule, trained with plain SGD, hand-written momentum, built-in momentum or Adam; its
training, validation and test metrics.

    python train.py --model.momentum_impl manual      # velocity buffers written by hand (lit_momentum/momentum.py)
    python train.py --model.momentum 0                # plain SGD
    python train.py --config configs/mnist1d.yaml     # two hidden layers of 100, relu, 10 classes; val/loss, val/acc
    python train.py --config configs/cnn.yaml         # the MNIST-1D paper's CNN (--model.net ConvNet1D)
    python train.py --lr_scheduler CosineAnnealingLR --lr_scheduler.T_max 2000    # any torch.optim.lr_scheduler
"""

import math
from typing import Any, Literal

import torch
from torch import Tensor
from torchmetrics import Accuracy, MaxMetric

from lit_momentum.averages import SampleMean, epoch_mean, stacked
from lit_momentum.epochs import EpochEndModule, NonFiniteLossError
from lit_momentum.loss import loss_and_predictions
from lit_momentum.nets import MLP, NetFactory, build_net, check_output, net_label
from lit_momentum.optimizers import (
    OptimizerFactory,
    build_optimizer,
    check_run_settings,
    family_momentum,
    optimizer_config,
    optimizer_label,
)
from lit_momentum.schedules import (
    STAND_IN_SETTINGS,
    SchedulerFactory,
    build_scheduler,
    group_values,
    schedule_label,
    set_by,
)


class MomentumModule(EpochEndModule):
    """A network (the article's MLP by default) trained with plain SGD, momentum or Adam.

    Trained on ``(x, y)`` batches; BCE for binary labels, else cross-entropy.

    Args:
        dim: input width; set from the data module (``data.dim``) by the CLI.
        num_classes: 2 for binary labels (one logit, as in the article), k > 2 for k logits; set from the data.
        net: the network, built as ``net(dim, num_classes)``: a class with its options (``--model.net ConvNet1D
            --model.net.channels 8``, or YAML ``class_path`` / ``init_args``); see ``lit_momentum.nets``.
        optimizer: ``sgd`` (with or without momentum), ``adam`` or ``adamw`` (momentum is their beta1), or any other
            by class path with its own options (``--model.optimizer RMSprop --model.optimizer.alpha 0.9``); lr and
            momentum are still ``lr`` and ``momentum`` (its ``momentum`` or ``betas[0]``): see
            ``lit_momentum.optimizers``.
        momentum_impl: ``builtin`` hands the settings to ``torch.optim.SGD``; ``manual`` keeps velocity buffers by
            hand and hands them to a momentum-free SGD in place of the gradient (``HandWrittenSGD``).
        lr: learning rate.
        momentum: momentum factor in [0, 1); 0 is plain SGD.
        dampening: dampening for momentum, in [0, 1].
        nesterov: Nesterov momentum (needs momentum > 0 and dampening 0).
        weight_decay: L2 penalty added to the gradient (and so to the velocity); AdamW's decoupled decay.
        beta2: Adam's and AdamW's second-moment decay.
        eps: Adam's and AdamW's denominator term.
        lr_scheduler: a ``torch.optim.lr_scheduler`` class with its options (``--lr_scheduler OneCycleLR
            --lr_scheduler.max_lr 0.1``), built on the optimizer; its lr and momentum are ``train/lr`` and
            ``train/momentum``. See ``lit_momentum.schedules``.
        lr_scheduler_interval: step the scheduler after each ``epoch`` (Lightning's default) or each ``step``.
    """

    def __init__(
        self,
        dim: int = 1000,
        num_classes: int = 2,
        net: NetFactory = MLP,
        optimizer: Literal["sgd", "adam", "adamw"] | OptimizerFactory = "sgd",
        momentum_impl: Literal["builtin", "manual"] = "builtin",
        lr: float = 1e-5,
        momentum: float = 0.9,
        dampening: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        beta2: float = 0.999,
        eps: float = 1e-8,
        lr_scheduler: SchedulerFactory | None = None,
        lr_scheduler_interval: Literal["epoch", "step"] = "epoch",
    ) -> None:
        super().__init__()
        check_run_settings(optimizer, momentum_impl, lr, momentum, dampening, nesterov, weight_decay, beta2, eps)
        self.save_hyperparameters()
        self.hparams["optimizer"] = optimizer_config(optimizer)  # data, not code (as the network's)
        self.save_net_config()
        self.rates: list[tuple[float, float]] = []  # this epoch's (lr, momentum) per step, when scheduled
        # the network gives logits: the output sigmoid (softmax) is fused into the loss, the same function as
        # sigmoid + BCELoss but stable, autocast-safe, and a nan passes through to the epoch-end check
        self.net = build_net(net, dim, num_classes)
        check_output(self.net, dim, num_classes)
        self.automatic_optimization = momentum_impl == "builtin"
        # no input checks: they would sync with the device, and a nan must reach the check in end_epoch
        task = dict(task="binary") if num_classes == 2 else dict(task="multiclass", num_classes=num_classes)
        self.train_acc = Accuracy(**task, validate_args=False)
        # held-out loss and accuracy: means over samples, in float64 (lit_momentum.averages); the best accuracy so
        # far is saved in checkpoints, so a resumed run keeps it
        self.val_mean, self.test_mean = SampleMean(), SampleMean()
        self.val_acc_best = MaxMetric(nan_strategy="disable")
        self.val_acc_best.persistent(True)

    @property
    def run_name(self) -> str:
        """The network and variant in a few characters, e.g. ``manual_m0.9_lr1e-05`` (the article's MLP),
        ``linear_builtin_m0.9_lr0.01``, ``builtin_OneCycleLR-max_lr0.1``: the run's log directory is named by it,
        after the data's name. A setting the scheduler replaces from its start (``set_by``) is left out of it."""
        hp = self.hparams
        schedule = hp.get("lr_scheduler")  # (a checkpoint from before beta2 and eps: stand_in's defaults)
        replaced = set_by(schedule, hp.optimizer, {k: hp[k] for k in STAND_IN_SETTINGS if k in hp}) if schedule else {}
        momentum = "" if "momentum" in replaced else f"m{hp.momentum:g}"
        if not isinstance(hp.optimizer, str):  # a class path: its class and options, then momentum, weight decay, lr
            key = family_momentum(hp.optimizer)  # (betas: b0.9, as Adam's)
            parts = [optimizer_label(hp.optimizer), momentum.replace("m", "b", 1) if key == "betas" else
                     momentum if key else ""]
        elif hp.optimizer in ("adam", "adamw"):
            beta2, eps = hp.get("beta2", 0.999), hp.get("eps", 1e-8)
            parts = [hp.optimizer, momentum.replace("m", "b", 1), f"b2_{beta2:g}" if beta2 != 0.999 else "",
                     f"eps{eps:g}" if eps != 1e-8 else ""]
        elif hp.momentum == 0 and not replaced.get("momentum"):
            parts = ["sgd"]
        else:
            parts = [hp.momentum_impl, "nesterov" if hp.nesterov else "", momentum]
            parts.append(f"damp{hp.dampening:g}" if hp.dampening else "")
        parts += [f"wd{hp.weight_decay:g}" if hp.weight_decay else "", "" if "lr" in replaced else f"lr{hp.lr:g}"]
        return "_".join(p for p in [net_label(hp.net), *parts, schedule_label(schedule)] if p)

    def forward(self, x: Tensor) -> Tensor:
        with self.streams.run(0):  # dropout and noise draw from the run's own stream
            return self.net(x)  # (B, dim) -> (B, 1) or (B, K) logits

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        # a checkpoint written before there was validation has no best validation accuracy yet
        checkpoint["state_dict"].setdefault("val_acc_best.max_value", self.val_acc_best.max_value)
        hp = self.hparams
        if hp.momentum_impl == "manual" and "lr_scheduler" not in checkpoint["hyper_parameters"]:
            # written when the hand-written rule kept its settings outside a momentum-free SGD's param groups
            for group in checkpoint["optimizer_states"][0]["param_groups"]:
                group.update(momentum=hp.momentum, dampening=hp.dampening, nesterov=hp.nesterov,
                             weight_decay=hp.weight_decay)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """One step, Lightning's (where the run takes no steps of its own, ``EpochEndModule.steps``)."""
        loss = self.batch_loss(batch)
        if not self.automatic_optimization:  # the hand-written momentum steps itself (its velocity inside the step)
            self.take_step(loss)
            if batch_idx + 1 == self.trainer.num_training_batches:
                self.step_schedule("epoch")  # where Lightning steps it under automatic optimization
        return loss

    def batch_loss(self, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch  # (B, dim), (B,)
        loss, preds = loss_and_predictions(self(x), y)
        if self.hparams.get("lr_scheduler"):  # the values this step uses (Python numbers: no sync)
            self.rates.append(group_values(self.trainer.optimizers[0]))
        # kept on the device and handed to torchmetrics and the logger once per epoch: a self.log call or a
        # metric update costs more than this step's arithmetic, and reading a value would sync with the device
        self.seen.append((loss.detach(), preds, y))  # batch loss, predicted class, label
        return loss

    def end_epoch(self) -> None:
        """Epoch loss and accuracy to torchmetrics, the bar and monitoring callbacks; step losses to the logger."""
        losses, preds, labels = zip(*self.seen)
        self.seen.clear()
        # per-step losses, averaged over DDP ranks (each holds a slice of the global batch)
        losses = self.trainer.strategy.reduce(stacked(losses), reduce_op="mean")  # (steps,)
        self.train_acc.update(torch.cat(preds), torch.cat(labels))
        # epoch loss = mean of the batch losses, as in the article (in float64, as a grid point's)
        epoch_metrics = {"train/loss": epoch_mean(losses), "train/acc": self.train_acc.compute()}
        self.train_acc.reset()
        self.log_dict(epoch_metrics, prog_bar=True, logger=False,  # for the progress bar and monitoring callbacks
                      batch_size=1)  # (no batch to infer a size from under ``dataloader_iter``)
        step_losses = losses.tolist()  # one sync per epoch
        first, every = self.global_step - len(step_losses), self.trainer.log_every_n_steps
        bad = next((i for i, v in enumerate(step_losses) if not math.isfinite(v) or v < 0), None)
        if bad is not None:  # raised before this epoch's checkpoint: the last one on disk is still a good one
            value, where = step_losses[bad], f"at epoch {self.current_epoch}, step {first + bad}"
            raise NonFiniteLossError(
                f"train/loss is {value} {where} (lr {self.hparams.lr:g}): the run stopped; lower --model.lr"
                if not value < 0 else f"train/loss is {value:g} {where}, and BCE or cross-entropy cannot be "
                f"negative: labels outside 0 .. num_classes - 1 (see lit_momentum/data/contract.py)")
        if self.logger is not None:
            # written and flushed here, before this epoch's checkpoint: a run killed after the checkpoint has all
            # its points on disk, so the resumed run continues the curve without a gap
            rates, self.rates = self.rates, []
            for i, (step, value) in enumerate(zip(range(first, self.global_step), step_losses)):
                if step % every == 0:
                    scheduled = {"train/lr": rates[i][0], "train/momentum": rates[i][1]} if rates else {}
                    self.logger.log_metrics({"train/loss_step": value, **scheduled}, step=step)
            self.logger.log_metrics({k: v.item() for k, v in epoch_metrics.items()}, step=self.global_step - 1)
            self.logger.save()

    def evaluate(self, batch: tuple[Tensor, Tensor], mean: SampleMean) -> None:
        x, y = batch
        losses, preds = loss_and_predictions(self(x), y, reduction="none")  # (B,) each
        mean.update(losses, preds == y)  # a mean over samples, whatever the batch sizes

    def held_out(self, mean: SampleMean) -> tuple[Tensor, Tensor]:
        """Loss and accuracy over every rank's samples."""
        return mean.compute(lambda sums: self.trainer.strategy.reduce(sums, reduce_op="sum"))

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.evaluate(batch, self.val_mean)

    def on_validation_epoch_end(self) -> None:
        """``val/loss``, ``val/acc`` and ``val/acc_best``: to the bar and callbacks (``monitor="val/acc"``) and to the
        logger at the step of the epoch's ``train/*`` points, so the curves line up."""
        loss, acc = self.held_out(self.val_mean)
        metrics = {"val/loss": loss, "val/acc": acc}
        if self.trainer.sanity_checking:  # Lightning's check of the loop before training: not a result
            return
        self.val_acc_best.update(metrics["val/acc"])
        metrics["val/acc_best"] = self.val_acc_best.compute()
        self.log_dict(metrics, prog_bar=True, logger=False)
        if self.logger is not None:
            self.logger.log_metrics({k: v.item() for k, v in metrics.items()}, step=self.global_step - 1)
            self.logger.save()

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self.evaluate(batch, self.test_mean)

    def on_test_epoch_end(self) -> None:
        loss, acc = self.held_out(self.test_mean)
        self.log_dict({"test/loss": loss, "test/acc": acc})

    def configure_optimizers(self) -> torch.optim.Optimizer | dict[str, Any]:
        hp = self.hparams
        # SGD's built-in rule or the hand-written one (its settings in the same param groups), Adam, AdamW, any class
        opt = build_optimizer(hp.optimizer, self.parameters(), hp.lr, hp.momentum, hp.dampening, hp.nesterov,
                              hp.weight_decay, hp.get("beta2", 0.999), hp.get("eps", 1e-8),
                              hand_written=hp.momentum_impl == "manual")
        if not hp.get("lr_scheduler"):
            return opt
        scheduler = build_scheduler(hp.lr_scheduler, opt, self.schedule_length())
        return {"optimizer": opt, "lr_scheduler": {"scheduler": scheduler, "interval": hp.lr_scheduler_interval}}
