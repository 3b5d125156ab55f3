"""Any optimizer per grid point: each point's own instance of the class its ``train.py`` run builds (RMSprop, NAdam,
a user's Lion), with the point's lr, momentum and weight decay, over that point's slices of the stacked parameters.
PyTorch's (or the user's) own arithmetic on the point's tensors: a point's update is its run's, to the bit.

    python -m lit_momentum.sweep --optimizer RMSprop --lr 1e-3 1e-2 --momentum 0 0.9     # 4 RMSprop runs, one grid
    python -m lit_momentum.sweep --optimizer NAdam --lr 1e-3 --momentum 0.8 0.9 --optimizer.momentum_decay 0.002

sgd, adam and adamw keep their batched updates (``GridSGD``, ``GridAdam``: one set of operations for every point);
this path costs one optimizer step per point (docs/performance.md measures both).
"""

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from lit_momentum.momentum import closure_loss
from lit_momentum.optimizers import build_optimizer, family_momentum, optimizer_class
from lit_momentum.sweep.axes import kind


def takes_point_optimizers(optimizer: Any) -> bool:
    """Whether the grid trains this optimizer point by point (any class but sgd, adam and adamw)."""
    return kind(optimizer) == "class"


def optimizer_path(optimizer: Any) -> str:
    """How the grid steps this optimizer, in a few words (the sweep says it once, after the network's path)."""
    if not takes_point_optimizers(optimizer):
        return f"{optimizer}: one batched update for every point"
    cls = optimizer_class(optimizer)
    return (f"{cls.__name__}: stepped point by point, each point its own {cls.__module__}.{cls.__qualname__} "
            f"(sgd, adam and adamw are batched)")


def check_point_optimizer(optimizer: Any) -> None:
    """A class the grid cannot step point by point, in one line: L-BFGS re-evaluates its closure within a step, and
    a grid's closure is every point's loss at once."""
    if optimizer_class(optimizer) is torch.optim.LBFGS:
        raise ValueError("--model.optimizer LBFGS: it re-evaluates the loss within a step, which a grid computes for "
                         "every point at once; train it with python train.py")


class PointOptimizers(Optimizer):
    """N optimizers, one per grid point, as one ``Optimizer`` for Lightning.

    Its own param group holds the stacked (N, ...) parameters: Lightning zeroes their gradients and checkpoints this
    object. Point k's optimizer holds views of the slices ``p[k]`` (leaf tensors sharing the parameters' memory) and
    gets the slices of the stacked gradients before it steps. A frozen point (``alive()`` false) is not stepped.
    Its ``state_dict`` is every point's, in order; ``settings``: each point's lr, momentum and weight decay.
    """

    def __init__(self, params: Sequence[Tensor], optimizer: Any, settings: list[dict[str, float]],
                 alive: Callable[[], list[bool]]) -> None:
        super().__init__(params, defaults={})
        self.stacked = list(self.param_groups[0]["params"])  # (N, ...) each
        self.points = [build_optimizer(optimizer, [p.detach()[k] for p in self.stacked], **s)
                       for k, s in enumerate(settings)]
        self.key, self.alive = family_momentum(optimizer), alive

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = closure_loss(closure)
        grads = [p.grad for p in self.stacked]
        for k, (opt, on) in enumerate(zip(self.points, self.alive())):
            if not on:
                continue
            views = opt.param_groups[0]["params"]
            for view, g in zip(views, grads):
                view.grad = None if g is None else g[k]  # (a view: no copy)
            opt.step()
            for view in views:
                view.grad = None  # the stacked gradient is freed with Lightning's zero_grad
        return loss

    def set_points(self, name: str, values: list[float]) -> None:
        """One value per point for ``lr`` or ``momentum`` (a schedule's, at this step), where each point's optimizer
        keeps it (``momentum``, or ``betas[0]``; none: nothing to set)."""
        for opt, v in zip(self.points, values):
            group = opt.param_groups[0]
            if name == "lr":
                group["lr"] = v
            elif self.key == "momentum":
                group["momentum"] = v
            elif self.key == "betas":
                group["betas"] = (v, *group["betas"][1:])

    def refresh(self) -> None:
        """A point just frozen: its state (moments, buffers) zeroed, as the batched optimizers zero theirs."""
        for opt, on in zip(self.points, self.alive()):
            if not on:
                for state in opt.state.values():
                    for t in state.values():
                        if isinstance(t, Tensor) and t.is_floating_point() and t.dim() > 0:
                            t.zero_()

    def state_tensors(self) -> list[Tensor]:
        return []  # (per point, not stacked: ``refresh`` zeroes a frozen point's)

    def state_dict(self) -> dict[str, Any]:
        return {"points": [opt.state_dict() for opt in self.points]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        for opt, state in zip(self.points, state_dict["points"], strict=True):
            opt.load_state_dict(state)
