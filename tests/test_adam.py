"""Adam and AdamW for a grid (``GridAdam``) against ``torch.optim.Adam`` / ``AdamW``, step by step, every grid point
to the bit (``torch.equal``): weights, first and second moments, in float32 and float64.

Bugs these exist to catch (each planted below, each must fail the comparison): the bias correction dropped; AdamW's
weight decay applied as L2 in the gradient; a point given another point's setting; a rule that rounds twice.
"""

import pytest
import torch
from torch import nn

import lit_momentum.adam as adam_module
from lit_momentum.adam import GridAdam

STEPS = 20
# five points that differ in every setting (beta1 is the momentum axis; 0 and 0.99 included)
POINTS = [dict(lr=1e-2, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0),
          dict(lr=3e-2, beta1=0.0, beta2=0.99, eps=1e-6, weight_decay=1e-2),
          dict(lr=1e-3, beta1=0.99, beta2=0.9, eps=1e-3, weight_decay=0.1),
          dict(lr=5e-2, beta1=0.5, beta2=0.999, eps=1e-8, weight_decay=1e-3),
          dict(lr=1e-2, beta1=0.9, beta2=0.95, eps=1e-5, weight_decay=0.0)]


def nets(dtype: torch.dtype) -> list[nn.Module]:
    out = []
    for k in range(len(POINTS)):
        torch.manual_seed(k)
        out.append(nn.Sequential(nn.Linear(6, 5), nn.Tanh(), nn.Linear(5, 1)).to(dtype))
    return out


def lockstep(dtype: torch.dtype, decoupled: bool, grid_points: list[dict] = POINTS) -> None:
    """Each point's own torch.optim.Adam(W) run and the grid (given ``grid_points``' settings), on the same batches,
    the grid handed each point's gradient as its run computed it: equal after every step."""
    singles = nets(dtype)
    refs = [(torch.optim.AdamW if decoupled else torch.optim.Adam)(
        n.parameters(), lr=p["lr"], betas=(p["beta1"], p["beta2"]), eps=p["eps"], weight_decay=p["weight_decay"])
        for n, p in zip(singles, POINTS)]
    stacked = [nn.Parameter(torch.stack([list(n.parameters())[i].detach().clone() for n in nets(dtype)]))
               for i in range(4)]  # (N, ...) per tensor: weight 0, bias 0, weight 1, bias 1
    settings = {k: torch.tensor([p[k] for p in grid_points], dtype=torch.float64) for k in POINTS[0]}
    grid = GridAdam(stacked, settings, decoupled=decoupled)
    gen = torch.Generator().manual_seed(1)
    for step in range(STEPS):
        x, y = torch.randn(16, 6, generator=gen, dtype=dtype), torch.randn(16, generator=gen, dtype=dtype)
        for n, opt in zip(singles, refs):
            opt.zero_grad()
            ((n(x).squeeze(-1) - y) ** 2).mean().backward()
            opt.step()
        for i, t in enumerate(stacked):  # the very gradients the references used: the optimizers alone compared
            t.grad = torch.stack([list(n.parameters())[i].grad for n in singles])
        grid.step()
        for k, (n, opt) in enumerate(zip(singles, refs)):
            for i, p in enumerate(n.parameters()):
                assert torch.equal(stacked[i][k], p), f"point {k} weights differ at step {step}"
                state, ours = opt.state[p], grid.state[stacked[i]]
                assert torch.equal(ours["exp_avg"][k], state["exp_avg"]), f"point {k} exp_avg, step {step}"
                assert torch.equal(ours["exp_avg_sq"][k], state["exp_avg_sq"]), f"point {k} exp_avg_sq, step {step}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("decoupled", [False, True], ids=["adam", "adamw"])
def test_every_grid_point_is_its_own_torch_adam_to_the_bit(dtype: torch.dtype, decoupled: bool) -> None:
    lockstep(dtype, decoupled)


def no_bias_correction(settings: dict, step: int) -> dict:
    return {"step_size": list(settings["lr"]), "bc2_sqrt": [1.0] * len(settings["lr"]),
            "decay": [1 - lr * wd for lr, wd in zip(settings["lr"], settings["weight_decay"])]}


def l2_in_adamw(*args: object) -> None:
    return ORIGINAL_STEP(*args[:-1], False)  # AdamW's decay given to the gradient, as Adam's L2


ORIGINAL_STEP = adam_module.adam_step


@pytest.mark.parametrize("plant, decoupled", [("host_scalars", False), ("adam_step", True)],
                         ids=["bias-correction-dropped", "adamw-decay-as-l2"])
def test_a_wrong_rule_fails_the_check(plant: str, decoupled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(adam_module, plant, no_bias_correction if plant == "host_scalars" else l2_in_adamw)
    with pytest.raises(AssertionError, match="differ|exp_avg"):
        lockstep(torch.float32, decoupled)


def test_swapped_settings_fail_the_check() -> None:
    with pytest.raises(AssertionError, match="point 0"):
        lockstep(torch.float32, False, [POINTS[1], POINTS[0], *POINTS[2:]])
