"""N runs of one network as one LightningModule: stacked parameters, ``torch.func``, one setting per run.

    python -m lit_momentum.sweep --lr 1e-5 1e-4 --momentum 0 0.9 --seeds 0 1     # trains one of these (N = 8)
    python -m lit_momentum.sweep --config configs/sweep_cnn.yaml                  # any network: the MNIST-1D CNN
    python -m lit_momentum.sweep --lr 0.01 0.1 --lr_scheduler CosineAnnealingLR --lr_scheduler.T_max 20

Grid point k starts from the weights ``python train.py --seed_everything <seed_k>`` starts from (its network is built
the same way, under that seed), sees the same batches (every point reads the one shared batch: the data is never
copied per point), and is updated by ``GridSGD`` with its own lr, momentum, dampening, nesterov and weight decay. A
point whose epoch loss turns inf or nan, or exceeds ``bound``, is marked diverged and frozen; the others train on
untouched.
"""

import functools
import math
from typing import Any, Literal

import torch
from torch import Tensor

from lit_momentum.adam import GridAdam
from lit_momentum.averages import SampleMean, epoch_mean, stacked
from lit_momentum.curves import running_best
from lit_momentum.epochs import EpochEndModule, NonFiniteLossError
from lit_momentum.loss import loss_and_predictions
from lit_momentum.momentum import GridSGD
from lit_momentum.nets import MLP, NetFactory, build_net, check_output
from lit_momentum.optimizers import OptimizerFactory, optimizer_config
from lit_momentum.schedules import SchedulerFactory
from lit_momentum.streams import RandomStreams
from lit_momentum.sweep.batched import BatchedNet
from lit_momentum.sweep.logger import seed_bands
from lit_momentum.sweep.memory import keep_freed_memory
from lit_momentum.sweep.optimizer import grid_optimizer
from lit_momentum.sweep.point_optimizers import PointOptimizers
from lit_momentum.sweep.points import check_options, make_grid
from lit_momentum.sweep.schedules import PointSchedules


class GridModule(EpochEndModule):
    """``MomentumModule``'s network N times over, as one ``BatchedNet`` of stacked (N, ...) parameters.

    Args:
        dim, num_classes, net: as ``MomentumModule`` (``dim`` and ``num_classes`` set from the data).
        lr, momentum, dampening, nesterov, weight_decay, beta2, eps: one value or a list each; the grid is their
            product (dampening and nesterov are SGD's; beta2 and eps Adam's; momentum is Adam's beta1).
            ``dampening="momentum"``: each point's dampening is its momentum, the article's formula.
        seeds: initial-weight seeds, one or a list (the sweep's default is ``--seed_everything``).
        bound: an epoch loss above this (or inf/nan) marks a point diverged; the article's model starts at ln 2.
        optimizer: ``sgd`` (``GridSGD``: the hand-written rule, ``torch.optim.SGD``'s), ``adam`` or ``adamw``
            (``GridAdam``: ``torch.optim.Adam``'s and ``AdamW``'s), or any class as ``train.py`` takes it (each
            point its own instance: ``PointOptimizers``); one for the whole grid (several: an outer axis).
        momentum_impl: accepted so that ``train.py``'s configs apply (``builtin`` and ``manual`` mean the same here).
        prefix, only: set by the sweep for one unit of a larger sweep: the outer values its run names start with,
            and the settings (all seeds of each) this part trains.
        lr_scheduler, lr_scheduler_interval: as ``MomentumModule``; each point's scheduler starts from the point's
            own settings (``lit_momentum.sweep.schedules``).
    """

    def __init__(
        self,
        dim: int = 1000,
        num_classes: int = 2,
        net: NetFactory = MLP,
        lr: float | list[float] = 1e-5,
        momentum: float | list[float] = 0.9,
        dampening: float | list[float] | Literal["momentum"] = 0.0,
        nesterov: bool | list[bool] = False,
        weight_decay: float | list[float] = 0.0,
        beta2: float | list[float] = 0.999,
        eps: float | list[float] = 1e-8,
        seeds: int | list[int] | None = 0,
        bound: float = 100.0,
        optimizer: Literal["sgd", "adam", "adamw"] | OptimizerFactory = "sgd",
        momentum_impl: str = "manual",
        prefix: str = "",
        only: list[str] | None = None,
        lr_scheduler: SchedulerFactory | None = None,
        lr_scheduler_interval: Literal["epoch", "step"] = "epoch",
    ) -> None:
        super().__init__()
        check_options(optimizer, momentum_impl, bound)
        keep_freed_memory()
        self.points = make_grid(prefix, only, optimizer, lr_scheduler, lr=lr, momentum=momentum, dampening=dampening,
                                nesterov=nesterov, weight_decay=weight_decay, beta2=beta2, eps=eps,
                                seeds=0 if seeds is None else seeds)
        self.save_hyperparameters()
        self.hparams["optimizer"] = optimizer_config(optimizer)  # data, not code (as the network's)
        self.save_net_config()
        nets = {}
        with torch.random.fork_rng(devices=[]):  # the global generator is left as it was
            for seed in sorted({p.seed for p in self.points}):
                torch.manual_seed(seed)  # as seed_everything(seed) before train.py builds its network
                nets[seed] = build_net(net, dim, num_classes)
        check_output(nets[self.points[0].seed], dim, num_classes)
        self.net = BatchedNet([nets[p.seed] for p in self.points], dim)  # point k's slices: seed_k's network
        self.streams = self.net.streams = RandomStreams(self.run_seeds())  # point k's random numbers: seed_k's
        n = len(self.points)
        self.register_buffer("diverged_epoch", torch.full((n,), -1))  # -1: still training (an int: no precision
        # changes it); the per-point settings follow from it and the points, see ``settings``
        self.point_settings: dict[str, Tensor] = {}
        self.history: list[list[float]] = []  # epoch losses, (epochs, N): summary.csv; saved in checkpoints
        self.history_steps: list[int] = []  # the training steps done at the end of each of those epochs
        self.val_history: list[tuple[int, int, list[float], list[float]]] = []  # (epoch, steps, val losses, accs)
        self.best_loss: list[float] = []  # (N,) each point's lowest epoch loss so far (from history)
        self.best_acc: list[float] = []  # (N,) each point's best validation accuracy so far (from val_history)
        self.val_mean = SampleMean()  # this validation's per-point sums (lit_momentum.averages)
        self.alive: list[bool] = [True] * n  # host copy of diverged_epoch < 0 (no sync to read it in a step)
        self.schedules: PointSchedules | None = None
        self.rates: list[tuple[list[float], list[float]]] = []  # this epoch's (lr, momentum) per step and point

    def run_seeds(self) -> list[int]:
        return [p.seed for p in self.__dict__.get("points", [])]  # (none yet while the base class is built)

    def on_fit_start(self) -> None:
        super().on_fit_start()
        self.net.streams = self.streams  # on the device now

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # one shared batch, every point's logits: (B, ...) -> (N, B, K) (K = 1: binary labels)

    def point_losses(self, out: Tensor, y: Tensor, reduction: str = "none") -> tuple[Tensor, Tensor]:
        """Per point and sample, the loss and whether the prediction is right: (N, B, K), (B,) -> (N, B), (N, B);
        ``reduction="mean"``: each point's mean loss, (N,). On the loop path point by point, as each single run
        computes it (a mean loss is not summed as ``mean()`` sums, nor N * B rows as B): its promise is the bit."""
        if self.net.mode == "loop":
            losses, predictions = zip(*(loss_and_predictions(o, y, reduction=reduction) for o in out))
            losses, predictions = torch.stack(losses), torch.stack(predictions)
        else:
            losses, predictions = loss_and_predictions(out, y, reduction="none")
            losses = losses.mean(-1) if reduction == "mean" else losses
        return losses, predictions == y

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        return self.batch_loss(batch)  # Lightning's step (where the grid takes no steps of its own: ``steps``)

    def batch_loss(self, batch: tuple[Tensor, Tensor]) -> Tensor:
        x, y = batch  # (B, D), (B,)
        losses, correct = self.point_losses(self(x), y, reduction="mean")  # (N,), (N, B)
        if self.schedules is not None:  # the values this step uses, (N,) each
            self.rates.append((self.schedules.lr, self.schedules.momentum))
        self.seen.append((losses.detach(), correct.sum(1), len(y)))  # the count a number: no host-device copy
        return losses.sum()  # the gradient of a sum: each point's parameters get their own loss's gradient

    def end_epoch(self) -> None:
        """Epoch loss and accuracy per point; divergence check; every point's curves to the logger (one sync)."""
        losses, correct, counts = zip(*self.seen)
        self.seen.clear()
        n, steps = len(self.points), len(losses)
        reduce = self.trainer.strategy.reduce
        step_losses = reduce(stacked(losses), reduce_op="mean")  # (S, N), DDP mean
        samples = torch.tensor(float(sum(counts)), dtype=step_losses.dtype, device=step_losses.device)
        acc = reduce(torch.stack(correct).sum(0).to(samples.dtype), reduce_op="sum") / reduce(samples, reduce_op="sum")
        # (N,) accuracy over every rank's samples; (N,) mean of the batch losses, as in the article and a single run
        epoch_loss = epoch_mean(step_losses)
        host = torch.cat([step_losses.flatten(), epoch_loss, acc]).tolist()  # one sync
        step_vals, epoch_vals, acc_vals = host[: steps * n], host[steps * n: steps * n + n], host[-n:]
        if any(v < 0 for v in step_vals):  # every point sees the same labels: not a point's divergence
            raise NonFiniteLossError(f"train/loss is {min(step_vals):g} at epoch {self.current_epoch}, and BCE or "
                                     f"cross-entropy cannot be negative: labels outside 0 .. num_classes - 1 (see "
                                     f"lit_momentum/data/contract.py)")
        was_active = self.active()
        bound = self.hparams.bound
        newly = [k for k in range(n) if was_active[k] and not (math.isfinite(epoch_vals[k]) and
                                                                epoch_vals[k] <= bound)]
        if newly:
            self.freeze(newly)
        self.history.append(epoch_vals)
        self.history_steps.append(self.global_step)
        self.best_loss = running_best(self.best_loss, epoch_vals, min)
        active = [a and k not in newly for k, a in enumerate(was_active)]
        if not any(active):  # every point diverged: nothing is left to train (the sweep says so)
            self.trainer.should_stop = True
        best = min((b for b, a in zip(self.best_loss, active) if a), default=math.nan)
        self.log_dict({"grid/best_loss": best, "grid/diverged": float(n - sum(active))}, prog_bar=True, logger=False,
                      batch_size=1)  # (the bar's values: no batch to infer a size from under ``dataloader_iter``)
        if self.logger is not None:
            self.log_curves(step_vals, epoch_vals, acc_vals, was_active, active)

    def active(self) -> list[bool]:
        """Which points still train (one host sync)."""
        return [e < 0 for e in self.diverged_epoch.tolist()]

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        self.val_mean.update(*self.point_losses(self(x), y))  # (N, B) each: a mean over samples per point

    def on_validation_epoch_end(self) -> None:
        """Per point ``val/loss`` (mean over samples) and ``val/acc`` of every rank's share; one sync."""
        loss, acc = self.val_mean.compute(lambda sums: self.trainer.strategy.reduce(sums, reduce_op="sum"))
        if self.trainer.sanity_checking:
            return
        loss, acc = torch.stack([loss, acc]).tolist()
        self.val_history.append((self.current_epoch, self.global_step, loss, acc))
        active = self.active()
        self.best_acc = running_best(self.best_acc, acc, max)
        self.log_dict({"grid/best_val_acc": max((b for b, on in zip(self.best_acc, active) if on), default=math.nan)},
                      prog_bar=True, logger=False)
        if self.logger is not None:
            metrics, bands = {}, {}
            for k, p in enumerate(self.points):
                if active[k]:
                    metrics.update({f"{p.name}/val/loss": loss[k], f"{p.name}/val/acc": acc[k],
                                    f"{p.name}/val/acc_best": self.best_acc[k]})
                    bands.setdefault(p.setting, []).append(acc[k])
            metrics.update(seed_bands(bands, "val/acc") if len({p.seed for p in self.points}) > 1 else {})
            self.logger.log_metrics(metrics, step=self.global_step - 1)
            self.logger.save()

    @torch.no_grad()
    def freeze(self, points: list[int]) -> None:
        """Stop training these points: their settings, weights, buffers and velocity become 0, so the inf or nan they
        reached cannot reach the arithmetic and no step needs a mask; the others are not touched."""
        idx = torch.tensor(points, device=self.device)
        self.diverged_epoch[idx] = self.current_epoch
        self.alive = [a and k not in points for k, a in enumerate(self.alive)]
        settings = [t for k, t in self.point_settings.items() if k != "eps"]  # eps 0 would divide 0 by 0 in Adam
        optimizer = self.trainer.optimizers[0]
        for t in [*self.net.parameters(), *self.net.buffers(), *optimizer.state_tensors(), *settings]:
            t[idx] = 0
        optimizer.refresh()  # the settings' host copies (Adam's per-step scalars, bf16 and fp16 parameters)

    def log_curves(self, step_vals: list[float], epoch_vals: list[float], acc_vals: list[float],
                   was_active: list[bool], active: list[bool]) -> None:
        """Per point ``<run>/train/loss_step``, ``train/loss``, ``train/acc`` and the HParams metrics; per setting
        with several seeds ``seed_bands/<setting>/train/loss_{mean,min,max,seeds}`` over its seeds still training.
        A point's curves end where it diverged: its step curve at its last step within the bound, its epoch curves at
        its last epoch within it (no blown-up value scales a card; see ``diverged_metrics``)."""
        n, steps = len(self.points), len(step_vals) // len(self.points)
        first, every, bound = self.global_step - steps, self.trainer.log_every_n_steps, self.hparams.bound
        ends = {k: next((i for i in range(steps) if not step_vals[i * n + k] <= bound), steps)  # (nan: not <=)
                for k in range(n) if was_active[k] and not active[k]}  # diverged now: its first step past the bound
        rates, self.rates = self.rates, []
        logged = [i for i in range(steps) if (first + i) % every == 0]  # this epoch's steps with curve points
        rate_tags = ("train/lr", "train/momentum") if rates else ()  # each point's schedule, when it has one
        for k, p in enumerate(self.points):
            if not was_active[k]:
                continue
            end = ends.get(k, steps)  # its loss curve ends there; its schedule's curves go on
            sched = [(lr[k], m[k]) for lr, m in rates] or [()] * steps  # (S,) its (lr, momentum) a step, or ()
            self.logger.log_steps(p.name, ("train/loss_step", *rate_tags),
                                  [(first + i, (step_vals[i * n + k], *sched[i])) for i in logged if i < end])
            if rates:
                self.logger.log_steps(p.name, rate_tags, [(first + i, sched[i]) for i in logged if i >= end])
        metrics, bands = {}, {}
        for k, p in enumerate(self.points):
            if active[k]:  # (a diverged point keeps its best from before, as in summary.csv)
                metrics.update({f"{p.name}/epoch": self.current_epoch, f"{p.name}/train/loss": epoch_vals[k],
                                f"{p.name}/train/acc": acc_vals[k], f"{p.name}/train/loss_best": self.best_loss[k],
                                f"{p.name}/train/diverged": 0})
                bands.setdefault(p.setting, []).append(epoch_vals[k])
            elif was_active[k]:  # diverged at this epoch: marked, its curves left where they were
                metrics.update(self.diverged_metrics(k, step_vals[k]))
        metrics.update(seed_bands(bands, "train/loss") if len({p.seed for p in self.points}) > 1 else {})
        self.logger.log_metrics(metrics, step=self.global_step - 1)
        self.logger.save()

    def diverged_metrics(self, k: int, first_loss: float) -> dict[str, float]:
        """A point that diverged now: its epoch, ``train/diverged`` 1 and ``train/diverged_epoch``. The HParams tab
        reads each metric's last value, so it shows the point's last epoch within the bound (``train/loss``, its best,
        the last validation), as its curves end. A point that diverged in its first epoch has none: it gets its loss
        at the start, at step 0 (``first_loss``, before any update; the bound if even that is past it) as
        ``train/loss`` and ``train/loss_best``, and ``val/acc_best`` 0, so that every view of the tab draws it."""
        name = self.points[k].name
        metrics = {f"{name}/epoch": self.current_epoch, f"{name}/train/diverged": 1,
                   f"{name}/train/diverged_epoch": self.current_epoch}
        if not any(math.isfinite(h[k]) for h in self.history[:-1]):  # no epoch before this one
            start = first_loss if self.current_epoch == 0 and first_loss <= self.hparams.bound else self.hparams.bound
            at_start = {f"{name}/train/loss": start, f"{name}/train/loss_best": start}
            if "val/acc_best" in getattr(self.logger, "metrics", ()):
                at_start[f"{name}/val/acc_best"] = self.best_acc[k] if self.best_acc else 0.0
            self.logger.log_metrics(at_start, step=0)
        return metrics

    def on_fit_end(self) -> None:
        if hasattr(self.logger, "end_sessions"):  # the HParams tab's Status: Failure where a point diverged
            self.logger.end_sessions({p.name: not on for p, on in zip(self.points, self.active())})

    def lr_scheduler_step(self, scheduler: PointSchedules, metric: Any) -> None:
        scheduler.step()  # every point's scheduler, where Lightning steps a single run's

    def configure_optimizers(self) -> GridSGD | GridAdam | PointOptimizers | dict[str, Any]:
        """``grid_optimizer`` over every point's settings (with a schedule, lr and momentum start where each point's
        scheduler starts them); the schedules, stepped by Lightning where it steps a single run's."""
        hp = self.hparams
        self.alive = self.active()
        if hp.get("lr_scheduler"):
            self.schedules = PointSchedules(hp.lr_scheduler, hp.optimizer, self.points, self.schedule_length(),
                                            lambda: self.alive)
        start = {"lr": self.schedules.lr, "momentum": self.schedules.momentum} if self.schedules else None
        opt, self.point_settings = grid_optimizer(list(self.parameters()), self.points, hp.optimizer,
                                                  lambda: self.alive, self.device, start)
        if self.schedules is None:
            return opt
        self.schedules.optimizer = opt
        return {"optimizer": opt, "lr_scheduler": {"scheduler": self.schedules, "interval": hp.lr_scheduler_interval}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["grid_history"] = torch.tensor(self.history, dtype=torch.float64)
        checkpoint["grid_history_steps"] = torch.tensor(self.history_steps)
        val = list(zip(*self.val_history)) or [[], [], [], []]
        checkpoint["grid_val_history"] = {"epoch": torch.tensor(val[0]), "step": torch.tensor(val[1]),
                                          "loss": torch.tensor(val[2], dtype=torch.float64),
                                          "acc": torch.tensor(val[3], dtype=torch.float64)}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self.history = checkpoint["grid_history"].tolist()
        self.history_steps = checkpoint["grid_history_steps"].tolist()
        val = checkpoint["grid_val_history"]
        self.val_history = list(zip(*(val[k].tolist() for k in ("epoch", "step", "loss", "acc"))))
        self.best_loss = functools.reduce(lambda best, new: running_best(best, new, min), self.history, [])
        self.best_acc = functools.reduce(lambda best, h: running_best(best, h[3], max), self.val_history, [])
