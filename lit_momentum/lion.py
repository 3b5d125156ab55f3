"""Lion (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms"), as a researcher writes an optimizer of
their own: the example of docs/optimizers.md, and the families study's user-written family.

    python train.py --model.optimizer lit_momentum.lion.Lion --model.lr 1e-4 --model.momentum 0.9
    python -m lit_momentum.sweep --optimizer lit_momentum.lion.Lion --lr 1e-4 3e-4 --momentum 0 0.9

Each step moves every weight by ``lr`` in the sign of an interpolation of the momentum and the gradient, then updates
the momentum with the second beta; weight decay is decoupled. ``betas[0]`` is its momentum (``--model.momentum``).
"""

import torch


class Lion(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 1e-4, betas: tuple[float, float] = (0.9, 0.99), weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=betas, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:  # Lightning hands the forward and backward over as the closure
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                m = self.state[p].setdefault("exp_avg", torch.zeros_like(p))
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(torch.sign(m * beta1 + p.grad * (1 - beta1)), alpha=-group["lr"])  # a step of lr per weight
                m.mul_(beta2).add_(p.grad, alpha=1 - beta2)
        return loss
