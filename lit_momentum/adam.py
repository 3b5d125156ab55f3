"""Adam and AdamW for a grid of runs: ``torch.optim.Adam`` / ``AdamW``'s update with one setting per grid point.

Adam's first moment is the article's velocity: ``m = beta1 m + (1 - beta1) g`` is ``v = m v + (1 - m) g``, SGD's
momentum with ``dampening = m``. With bias correction and the second moment::

    g = g + weight_decay * p              (Adam: L2 in the gradient)     p = p (1 - lr weight_decay)  (AdamW)
    m = lerp(m, g, 1 - beta1)             v = beta2 v + (1 - beta2) g^2
    p = p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

``adam_step`` applies it for N runs stacked along dim 0, settings as (N,) tensors, rounding as PyTorch's own
single-tensor implementation (the one it runs on a CPU) rounds: the per-point scalars are computed in Python floats
exactly as it computes its scalars (``beta1 ** t`` etc.), then cast to the parameters' dtype where it casts them, and
every fused operation (``lerp_``, ``addcmul_``, ``addcdiv_``) keeps its one rounding. For float16 and bfloat16
parameters a per-point tensor setting would be rounded to their dtype (beta2 0.999 to 1.0: a second moment that never
decays) where ``torch.optim.Adam`` hands PyTorch Python numbers, computed in float32: ``adam_point_step`` applies the
same update to one point with Python numbers, as ``torch.optim.Adam``'s single-tensor code does. ``tests/test_adam.py``
checks every point against its own ``torch.optim.Adam`` step by step to the bit, in every dtype.
"""

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from lit_momentum.momentum import LOW, closure_loss, per_point, to_device


def host_scalars(settings: dict[str, list[float]], step: int) -> dict[str, list[float]]:
    """Each point's scalars of step ``step`` (1-based), in Python floats, as ``torch.optim.Adam`` computes them."""
    out: dict[str, list[float]] = {"step_size": [], "bc2_sqrt": [], "decay": []}
    for lr, b1, b2, wd in zip(settings["lr"], settings["beta1"], settings["beta2"], settings["weight_decay"]):
        out["step_size"].append(lr / (1 - b1 ** float(step)))
        out["bc2_sqrt"].append((1 - b2 ** float(step)) ** 0.5)
        out["decay"].append(1 - lr * wd)
    return out


@torch.no_grad()
def adam_step(params: Sequence[Tensor], grads: Sequence[Tensor], exp_avgs: Sequence[Tensor],
              exp_avg_sqs: Sequence[Tensor], scalars: dict[str, Tensor], beta1: Tensor, beta2: Tensor, eps: Tensor,
              weight_decay: Tensor | float, decoupled: bool) -> None:
    """One Adam (``decoupled``: AdamW) step of N stacked runs, in place. ``scalars``: (N,) float64 tensors of
    ``host_scalars``; ``beta1``, ``beta2``, ``eps``, ``weight_decay``: (N,) float64 (or a number 0 for no decay)."""
    for p, g, m, v in zip(params, grads, exp_avgs, exp_avg_sqs):
        if not (isinstance(weight_decay, float) and weight_decay == 0):
            if decoupled:
                p.mul_(per_point(scalars["decay"], p))
            else:
                g = g.addcmul(p, per_point(weight_decay, p))  # g + wd p, rounded once as add(alpha=wd)
        m.lerp_(g, per_point(1 - beta1, m))  # torch's lerp kernel rounds a tensor weight as a scalar one
        v.mul_(per_point(beta2, v)).addcmul_(g, g * per_point(1 - beta2, v))
        denom = (v.sqrt() / per_point(scalars["bc2_sqrt"], v)).add_(per_point(eps, v))
        p.addcdiv_(m * per_point(-scalars["step_size"], m), denom)  # (value * m) / denom, as addcdiv rounds it


@torch.no_grad()
def adam_point_step(p: Tensor, g: Tensor, m: Tensor, v: Tensor, lr: float, beta1: float, beta2: float, eps: float,
                    weight_decay: float, step: int, decoupled: bool) -> None:
    """One point's Adam (AdamW) step with Python numbers, in place: ``torch.optim.Adam``'s single-tensor code."""
    if weight_decay != 0:
        if decoupled:
            p.mul_(1 - lr * weight_decay)
        else:
            g = g.add(p, alpha=weight_decay)
    m.lerp_(g, 1 - beta1)
    v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
    step_size = lr / (1 - beta1 ** float(step))
    denom = (v.sqrt() / (1 - beta2 ** float(step)) ** 0.5).add_(eps)
    p.addcdiv_(m, denom, value=-step_size)


class GridAdam(Optimizer):
    """Adam (``decoupled``: AdamW) for N runs stacked along dim 0 of every parameter, each with its own ``lr``,
    ``beta1``, ``beta2``, ``eps`` and ``weight_decay`` (``settings``: (N,) float64 tensors; call ``refresh`` after
    changing one in place, e.g. to freeze a point). The moments live in ``self.state`` and the step count in the
    param group (both checkpointed). Point k's update is ``torch.optim.Adam``'s with point k's settings, to the bit.
    """

    def __init__(self, params: Sequence[Tensor], settings: dict[str, Tensor], decoupled: bool = False) -> None:
        super().__init__(params, defaults={"step": 0})
        self.settings, self.decoupled = settings, decoupled
        self.refresh()

    def refresh(self) -> None:
        """Read the settings to the host once (one sync), for the per-step scalars computed there (a setting handed
        over as a number, weight decay 0 for every point: that number for each)."""
        n = len(self.settings["lr"])
        self.host = {k: v.tolist() if isinstance(v, Tensor) else [float(v)] * n for k, v in self.settings.items()}

    def set_points(self, name: str, values: list[float]) -> None:
        """One value per point for one setting (a schedule's, at this step): its tensor in place, its host copy."""
        self.settings[name].copy_(to_device(values, self.settings[name].device))
        self.host[name] = list(values)

    @torch.no_grad()
    def step(self, closure: Any = None) -> Any:
        loss = closure_loss(closure)
        params = [p for g in self.param_groups for p in g["params"] if p.grad is not None]
        if not params:
            return loss
        group = self.param_groups[0]
        group["step"] += 1
        for p in params:
            if not self.state[p]:
                self.state[p] = {"exp_avg": torch.zeros_like(p), "exp_avg_sq": torch.zeros_like(p)}
        for p in [p for p in params if p.dtype in LOW]:  # point by point, with Python numbers (see the module)
            st, h = self.state[p], self.host
            for k in range(len(p)):
                adam_point_step(p[k], p.grad[k], st["exp_avg"][k], st["exp_avg_sq"][k], h["lr"][k], h["beta1"][k],
                                h["beta2"][k], h["eps"][k], h["weight_decay"][k], group["step"], self.decoupled)
        params = [p for p in params if p.dtype not in LOW]
        if not params:
            return loss
        scalars = {k: to_device(v, params[0].device) for k, v in host_scalars(self.host, group["step"]).items()}
        s = self.settings
        adam_step(params, [p.grad for p in params], [self.state[p]["exp_avg"] for p in params],
                  [self.state[p]["exp_avg_sq"] for p in params], scalars, s["beta1"], s["beta2"], s["eps"],
                  s["weight_decay"], self.decoupled)
        return loss

    def state_tensors(self) -> list[Tensor]:
        """The optimizer's per-point state: the first and second moments (exp_avg, exp_avg_sq) of every parameter."""
        return [t for state in self.state.values() for t in (state["exp_avg"], state["exp_avg_sq"])]

