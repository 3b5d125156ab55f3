"""N runs of the article's MLP as one LightningModule: stacked weights, batched matmuls, one setting per run.

    python -m lit_momentum.sweep --lr 1e-5 1e-4 --momentum 0 0.9 --seeds 0 1     # trains one of these (N = 8)

Grid point k starts from the weights ``python train.py --seed_everything <seed_k>`` starts from, sees the same batches
(every point reads the one shared batch: the data is never copied per point), and is updated by ``GridSGD`` with its
own lr, momentum, dampening, nesterov and weight decay. A point whose epoch loss turns inf or nan, or exceeds
``bound``, is marked diverged and frozen; the others train on untouched.
"""

import itertools
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics.classification import MultilabelAccuracy

from lit_momentum.memory import keep_freed_memory
from lit_momentum.model import EpochEndModule, NonFiniteLossError, check_settings, make_mlp
from lit_momentum.momentum import GridSGD

AXES = ("lr", "momentum", "dampening", "nesterov", "weight_decay", "seeds")


def num(v: float) -> str:
    """A short exact spelling of a number for run names: 1e-05, 0.9, 0."""
    return f"{v:g}" if float(f"{v:g}") == v else repr(v)


@dataclass(frozen=True)
class GridPoint:
    lr: float
    momentum: float
    dampening: float
    nesterov: bool
    weight_decay: float
    seed: int

    @property
    def setting(self) -> str:
        """Everything but the seed, e.g. ``lr1e-05_m0.9_nesterov``: the seeds of one setting form a band."""
        parts = [f"lr{num(self.lr)}", f"m{num(self.momentum)}", f"damp{num(self.dampening)}" if self.dampening else "",
                 "nesterov" if self.nesterov else "", f"wd{num(self.weight_decay)}" if self.weight_decay else ""]
        return "_".join(p for p in parts if p)

    @property
    def name(self) -> str:
        """The point's TensorBoard run directory, e.g. ``lr1e-05_m0.9_seed0``."""
        return f"{self.setting}_seed{self.seed}"


def make_grid(**axes: Any) -> list[GridPoint]:
    """The Cartesian product of the axes (each a value or a list), every point checked as ``train.py`` checks a run."""
    values = {}
    for axis in AXES:
        vals = list(axes[axis]) if isinstance(axes[axis], list | tuple) else [axes[axis]]
        if not vals:
            raise ValueError(f"model.{axis} (--{axis}) needs at least one value")
        repeats = sorted({str(v) for v in vals if vals.count(v) > 1})
        if repeats:
            raise ValueError(f"model.{axis} (--{axis}) lists {', '.join(repeats)} more than once: each value once")
        values[axis] = vals
    for seed in values["seeds"]:
        if not 0 <= seed < 2**32:
            raise ValueError(f"model.seeds (--seeds) must be integers in [0, 2**32), got {seed}")
    points = [GridPoint(*combo) for combo in itertools.product(*values.values())]
    for p in points:
        try:
            check_settings("sgd", "manual", p.lr, p.momentum, p.dampening, p.nesterov, p.weight_decay)
        except ValueError as err:
            raise ValueError(f"grid point {p.name}: {err}") from None
    return points


class GridMLP(EpochEndModule):
    """The article's MLP N times over, as (N, ...) parameters trained by batched matrix products.

    Args:
        dim, hidden: as ``MomentumMLP``.
        lr, momentum, dampening, nesterov, weight_decay: one value or a list each; the grid is their product.
        seeds: initial-weight seeds, one or a list (the sweep's default is ``--seed_everything``).
        bound: an epoch loss above this (or inf/nan) marks a point diverged; this model starts at ln 2.
        optimizer, momentum_impl: accepted so that ``train.py``'s configs apply; the grid always applies the
            hand-written rule, which is ``torch.optim.SGD``'s (so ``builtin`` and ``manual`` mean the same here).
    """

    def __init__(
        self,
        dim: int = 1000,
        hidden: int | None = None,
        lr: float | list[float] = 1e-5,
        momentum: float | list[float] = 0.9,
        dampening: float | list[float] = 0.0,
        nesterov: bool | list[bool] = False,
        weight_decay: float | list[float] = 0.0,
        seeds: int | list[int] | None = 0,
        bound: float = 100.0,
        optimizer: str = "sgd",
        momentum_impl: str = "manual",
    ) -> None:
        super().__init__()
        if optimizer != "sgd":
            raise ValueError(f"model.optimizer: the sweep trains sgd (with or without momentum) only, got {optimizer}")
        if momentum_impl not in ("builtin", "manual"):
            raise ValueError(f"model.momentum_impl must be one of builtin, manual; got {momentum_impl!r}")
        if hidden is not None and hidden < 1:
            raise ValueError(f"model.hidden must be an integer >= 1 (or null for dim // 2), got {hidden}")
        if not 0 < bound < math.inf:
            raise ValueError(f"model.bound (--bound) must be > 0 and finite, got {bound}")
        keep_freed_memory()
        self.points = make_grid(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                                weight_decay=weight_decay, seeds=0 if seeds is None else seeds)
        self.save_hyperparameters()
        n, hidden = len(self.points), hidden or dim // 2
        inits = {}
        with torch.random.fork_rng(devices=[]):  # the global generator is left as it was
            for seed in sorted({p.seed for p in self.points}):
                torch.manual_seed(seed)
                inits[seed] = [t.detach() for t in make_mlp(dim, hidden).parameters()]
        # (N, H, D), (N, H), (N, 1, H), (N, 1): point k's slice is exactly train.py's nn.Linear weights for seed_k
        self.w1, self.b1, self.w2, self.b2 = (nn.Parameter(torch.stack([inits[p.seed][i] for p in self.points]))
                                              for i in range(4))
        for axis in ("lr", "momentum", "dampening", "nesterov", "weight_decay"):  # (N,): set to 0 to freeze a point
            vals = [float(getattr(p, axis)) for p in self.points]
            if axis == "dampening":  # torch.optim.SGD ignores dampening at momentum 0
                vals = [d if p.momentum else 0.0 for d, p in zip(vals, self.points)]
            self.register_buffer(f"point_{axis}", torch.tensor(vals))
        self.register_buffer("diverged_epoch", torch.full((n,), -1))  # -1: still training
        self.train_acc = MultilabelAccuracy(num_labels=n, average=None, validate_args=False)  # a label per point
        self.history: list[list[float]] = []  # epoch losses, (epochs, N): summary.csv; saved in checkpoints

    def forward(self, x: Tensor) -> Tensor:
        """Logits of every point for one shared batch: (B, D) -> (N, B), as ``W x^T`` per point (``nn.Linear``
        computes the transpose, ``x W^T``: the same products, summed in another order, equal to ~1 ulp). This way
        round the gradient of ``w1`` comes out in its own (N, H, D) layout; ``x W^T`` with a transposed view of
        ``w1`` made autograd copy a (N, D, H) gradient into place every step: 20-25 % of forward + backward."""
        n = self.w1.shape[0]
        h = torch.sigmoid(torch.baddbmm(self.b1.unsqueeze(2), self.w1, x.T.expand(n, *x.T.shape)))  # (N, H, B)
        return torch.baddbmm(self.b2.unsqueeze(2), self.w2, h).squeeze(1)  # (N, 1, H) @ (N, H, B) -> (N, B)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch  # (B, D), (B,)
        logits = self(x)  # (N, B)
        losses = F.binary_cross_entropy_with_logits(logits, y.expand_as(logits), reduction="none").mean(1)  # (N,)
        self.seen.append((losses.detach(), logits.detach().T > 0, y))
        return losses.sum()  # the gradient of a sum: each point's parameters get their own loss's gradient

    def end_epoch(self) -> None:
        """Epoch loss and accuracy per point; divergence check; every point's curves to the logger (one sync)."""
        losses, preds, labels = zip(*self.seen)
        self.seen.clear()
        n, steps = len(self.points), len(losses)
        step_losses = self.trainer.strategy.reduce(torch.stack(losses), reduce_op="mean")  # (S, N), DDP mean
        labels = torch.cat(labels).unsqueeze(1).expand(-1, n)  # (samples, N)
        acc = self.train_acc(torch.cat(preds).int(), labels.int()).reshape(n)  # (N,)
        self.train_acc.reset()
        epoch_loss = step_losses.mean(0)  # (N,) mean of the batch losses, as in the article
        host = torch.cat([step_losses.flatten().double(), epoch_loss.double(), acc.double()]).tolist()  # one sync
        step_vals, epoch_vals, acc_vals = host[: steps * n], host[steps * n: steps * n + n], host[-n:]
        was_active = [e < 0 for e in self.diverged_epoch.tolist()]
        bound = self.hparams.bound
        newly = [k for k in range(n) if was_active[k] and not (math.isfinite(epoch_vals[k]) and
                                                                epoch_vals[k] <= bound)]
        if len(newly) == sum(was_active):  # raised before this epoch's checkpoint: the last one on disk is good
            raise NonFiniteLossError(f"every grid point diverged (the last at epoch {self.current_epoch}: loss "
                                     f"above {bound:g} or not finite): lower --lr")
        if newly:
            self.freeze(newly)
        self.history.append(epoch_vals)
        active = [a and k not in newly for k, a in enumerate(was_active)]
        self.log_dict({"grid/best_loss": min(v for v, a in zip(epoch_vals, active) if a),
                       "grid/diverged": float(n - sum(active))}, prog_bar=True, logger=False)
        if self.logger is not None:
            self.log_curves(step_vals, epoch_vals, acc_vals, was_active, active)

    @torch.no_grad()
    def freeze(self, points: list[int]) -> None:
        """Stop training these points: their settings, weights and velocity become 0, so the inf or nan they reached
        cannot reach the arithmetic and no step needs a mask; the others are not touched."""
        idx = torch.tensor(points, device=self.device)
        self.diverged_epoch[idx] = self.current_epoch
        for t in [*self.parameters(), *self.trainer.optimizers[0].velocities(),
                  self.point_lr, self.point_momentum, self.point_dampening, self.point_nesterov,
                  self.point_weight_decay]:
            t[idx] = 0

    def log_curves(self, step_vals: list[float], epoch_vals: list[float], acc_vals: list[float],
                   was_active: list[bool], active: list[bool]) -> None:
        """Per point ``<run>/train/loss_step``, ``train/loss``, ``train/acc`` and the HParams metrics; per setting
        with several seeds ``seed_bands/<setting>/train/loss_{mean,min,max}`` over its seeds still training."""
        n, steps = len(self.points), len(step_vals) // len(self.points)
        first, every = self.global_step - steps, self.trainer.log_every_n_steps
        for i, step in enumerate(range(first, first + steps)):
            if step % every == 0:
                self.logger.log_metrics({f"{p.name}/train/loss_step": step_vals[i * n + k]
                                         for k, p in enumerate(self.points)
                                         if was_active[k] and math.isfinite(step_vals[i * n + k])}, step=step)
        metrics, bands = {}, {}
        for k, p in enumerate(self.points):
            if was_active[k] and math.isfinite(epoch_vals[k]):
                best = min(h[k] for h in self.history)
                metrics.update({f"{p.name}/train/loss": epoch_vals[k], f"{p.name}/train/acc": acc_vals[k],
                                f"{p.name}/hparams/final_loss": epoch_vals[k], f"{p.name}/hparams/best_loss": best})
            if active[k]:
                bands.setdefault(p.setting, []).append(epoch_vals[k])
        if len({p.seed for p in self.points}) > 1:
            for setting, vals in bands.items():
                run = f"seed_bands/{setting}/train"
                metrics.update({f"{run}/loss_mean": sum(vals) / len(vals), f"{run}/loss_min": min(vals),
                                f"{run}/loss_max": max(vals)})
        self.logger.log_metrics(metrics, step=self.global_step - 1)
        self.logger.save()

    def configure_optimizers(self) -> GridSGD:
        """Settings every point shares are handed over as numbers: the terms no point needs are skipped, decided
        here once rather than inside a step."""
        pts = self.points
        nesterov = [p.nesterov for p in pts]
        if all(nesterov) or not any(nesterov):
            nesterov = all(nesterov)
        else:
            nesterov = self.point_nesterov
        settings = {
            "lr": self.point_lr,
            "momentum": self.point_momentum if any(p.momentum for p in pts) else 0.0,
            "dampening": self.point_dampening if any(p.momentum and p.dampening for p in pts) else 0.0,
            "nesterov": nesterov,
            "weight_decay": self.point_weight_decay if any(p.weight_decay for p in pts) else 0.0,
        }
        return GridSGD([self.w1, self.b1, self.w2, self.b2], settings)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["grid_history"] = torch.tensor(self.history, dtype=torch.float64)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.history = checkpoint["grid_history"].tolist()
