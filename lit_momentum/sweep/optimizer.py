"""A grid's optimizer: each point's settings as (N,) float64 tensors on the device, and ``GridSGD`` (the
hand-written rule, ``torch.optim.SGD``'s) or ``GridAdam`` (``torch.optim.Adam``'s and ``AdamW``'s) over them; any
other class point by point (``PointOptimizers``)."""

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from lit_momentum.adam import GridAdam
from lit_momentum.momentum import GridSGD
from lit_momentum.sweep.axes import optimizer_axes
from lit_momentum.sweep.point_optimizers import PointOptimizers, takes_point_optimizers


def grid_optimizer(params: list[Tensor], points: list[Any], optimizer: Any, alive: Callable[[], list[bool]],
                   device: torch.device, start: dict[str, list[float]] | None = None
                   ) -> tuple[GridSGD | GridAdam | PointOptimizers, dict[str, Tensor]]:
    """The optimizer and its per-point settings (0 for a frozen point; ``start``: the values a schedule starts lr
    and momentum at), made after Lightning set the model's device and precision, so that no precision rounds them
    (bf16: 0.9 -> 0.8984). For SGD, settings every point shares are handed over as numbers: the terms no point needs
    are skipped (for Adam, a weight decay of 0 everywhere). Another class: an instance per point with its lr,
    momentum and weight decay (no tensors)."""
    vals = {axis: [float(getattr(p, axis)) for p in points] for axis in optimizer_axes(optimizer)}
    vals.update(start or {})
    if takes_point_optimizers(optimizer):
        settings = [dict(zip(vals, v)) for v in zip(*vals.values())]  # (N,) of {lr, momentum, weight_decay}
        return PointOptimizers(params, optimizer, settings, alive), {}
    if "dampening" in vals:  # torch.optim.SGD ignores dampening at momentum 0
        vals["dampening"] = [d if m else 0.0 for d, m in zip(vals["dampening"], vals["momentum"])]
    on = torch.tensor(alive(), dtype=torch.float64, device=device)
    s = {axis: torch.tensor(v, dtype=torch.float64, device=device) * (1.0 if axis == "eps" else on)
         for axis, v in vals.items()}  # (N,) each; a frozen point keeps its eps (Adam: 0 would divide 0 by 0)
    if optimizer in ("adam", "adamw"):
        return GridAdam(params, {"lr": s["lr"], "beta1": s["momentum"], "beta2": s["beta2"], "eps": s["eps"],
                                 "weight_decay": s["weight_decay"] if any(vals["weight_decay"]) else 0.0},
                        decoupled=optimizer == "adamw"), s
    nesterov = [p.nesterov for p in points]
    return GridSGD(params, {
        "lr": s["lr"],
        "momentum": s["momentum"] if any(vals["momentum"]) else 0.0,
        "dampening": s["dampening"] if any(vals["dampening"]) else 0.0,
        "nesterov": all(nesterov) if all(nesterov) or not any(nesterov) else s["nesterov"],
        "weight_decay": s["weight_decay"] if any(vals["weight_decay"]) else 0.0,
    }), s
