"""The hand-written momentum against ``torch.optim.SGD``, step by step, over every flavour: for one run
(``HandWrittenSGD``: the rule, then PyTorch's momentum-free SGD) and for a grid of runs stacked along dim 0
(``GridSGD``, one setting per point), to the last bit (``torch.equal``), in float32, float64, bfloat16 and float16
(where a setting such as 0.99 has no exact value: ``torch.optim`` computes with it in float32, never rounded to the
parameters' dtype).

Bugs these exist to catch (each planted below, each must fail the comparison): dampening applied on the first step;
weight decay kept out of the velocity; a rule that rounds twice (``y.add_(x * s)`` instead of one fused multiply-add);
a grid point given another point's setting; the branch for buffers started on some parameters only; a grid's
settings rounded to bfloat16 or float16 (momentum 0.99 as 0.98828).
"""

import itertools

import pytest
import torch
from torch import nn

import lit_momentum.momentum as momentum_module
from lit_momentum.momentum import BUFFER_KEY, GridSGD, HandWrittenSGD, velocity_step

STEPS = 25
DTYPES = [torch.float32, torch.float64, torch.bfloat16, torch.float16]
DTYPE_IDS = ["float32", "float64", "bfloat16", "float16"]
LR = 0.05  # large enough that a wrong rule moves the weights visibly within a few steps

FLAVOURS = [
    dict(momentum=m, dampening=d, weight_decay=wd, nesterov=False)
    for m, d, wd in itertools.product([0.5, 0.99], [0.0, 0.3], [0.0, 1e-2])
] + [
    dict(momentum=m, dampening=0.0, weight_decay=wd, nesterov=True)
    for m, wd in itertools.product([0.5, 0.9], [0.0, 1e-2])
]


def flavour_id(f: dict) -> str:
    return "m{momentum}-d{dampening}-wd{weight_decay}".format(**f) + ("-nesterov" if f["nesterov"] else "")


def make_pair(dtype: torch.dtype, flavour: dict) -> tuple[nn.Module, torch.optim.SGD, nn.Module, torch.optim.SGD]:
    """Two copies of one small MLP: one under torch.optim.SGD, one under HandWrittenSGD."""
    torch.manual_seed(0)
    ref = nn.Sequential(nn.Linear(16, 8), nn.Sigmoid(), nn.Linear(8, 1), nn.Sigmoid()).to(dtype)
    ours = nn.Sequential(nn.Linear(16, 8), nn.Sigmoid(), nn.Linear(8, 1), nn.Sigmoid()).to(dtype)
    ours.load_state_dict(ref.state_dict())
    ref_opt = torch.optim.SGD(ref.parameters(), lr=LR, **flavour)
    our_opt = HandWrittenSGD(ours.parameters(), lr=LR, **flavour)
    return ref, ref_opt, ours, our_opt


def train_in_lockstep(dtype: torch.dtype, flavour: dict) -> None:
    """Same batches for both; after every step, parameters and buffers must be equal to the bit."""
    ref, ref_opt, ours, our_opt = make_pair(dtype, flavour)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(STEPS, 32, 16, generator=gen, dtype=dtype)
    y = (torch.rand(STEPS, 32, generator=gen) > 0.5).to(dtype)
    for step in range(STEPS):
        for model, opt in ((ref, ref_opt), (ours, our_opt)):
            opt.zero_grad()
            nn.functional.binary_cross_entropy(model(x[step]).squeeze(-1), y[step]).backward()
            opt.step()
        for p_ref, p_ours in zip(ref.parameters(), ours.parameters()):
            assert torch.equal(p_ours, p_ref), f"weights differ at step {step}"
            buf_ref, buf_ours = ref_opt.state[p_ref]["momentum_buffer"], our_opt.state[p_ours][BUFFER_KEY]
            assert torch.equal(buf_ours, buf_ref), f"buffers differ at step {step}"
            assert buf_ours.data_ptr() != p_ours.grad.data_ptr(), "velocity aliases the gradient"


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("flavour", FLAVOURS, ids=flavour_id)
def test_matches_torch_sgd_every_step(dtype: torch.dtype, flavour: dict) -> None:
    train_in_lockstep(dtype, flavour)


def dampened_from_the_start(params, grads, buffers, momentum, dampening=0.0, nesterov=False, weight_decay=0.0):
    """Wrong: applies dampening on the first step too (``v = (1 - d) g``)."""
    buffers = [b if b is not None else torch.zeros_like(g) for g, b in zip(grads, buffers)]
    return velocity_step(params, grads, buffers, momentum, dampening, nesterov, weight_decay)


def decay_outside_buffer(params, grads, buffers, momentum, dampening=0.0, nesterov=False, weight_decay=0.0):
    """Wrong: adds weight decay to the step but keeps it out of the velocity."""
    directions, buffers = velocity_step(params, grads, buffers, momentum, dampening, nesterov, 0.0)
    directions = [d.clone() for d in directions]
    torch._foreach_add_(directions, list(params), alpha=weight_decay)
    return directions, buffers


def rounds_twice(ys, xs, s):
    """Wrong, by one rounding: ``y += s * x`` as a product, then a sum (``torch.optim.SGD`` fuses the two)."""
    for y, x in zip(ys, xs):
        y.add_(x * (momentum_module.per_point(s, y) if isinstance(s, torch.Tensor) else s))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("rule, flavour", [
    (dampened_from_the_start, dict(momentum=0.9, dampening=0.3, weight_decay=0.0, nesterov=False)),
    (decay_outside_buffer, dict(momentum=0.9, dampening=0.0, weight_decay=1e-2, nesterov=False)),
    (rounds_twice, dict(momentum=0.9, dampening=0.3, weight_decay=1e-2, nesterov=False)),
], ids=["dampening-on-step-1", "decay-outside-buffer", "rounds-twice"])
def test_a_wrong_rule_fails_the_check(monkeypatch: pytest.MonkeyPatch, rule, flavour: dict,
                                      dtype: torch.dtype) -> None:
    name = "add_scaled_" if rule is rounds_twice else "velocity_step"
    monkeypatch.setattr(momentum_module, name, rule)
    with pytest.raises(AssertionError):
        train_in_lockstep(dtype, flavour)


def test_article_rule_by_hand() -> None:
    """Two steps of ``v = m v + g`` on a single number, written out: v1 = g1, v2 = m g1 + g2."""
    p = torch.zeros(1)
    g1, g2 = torch.tensor([2.0]), torch.tensor([-1.0])
    (direction,), bufs = velocity_step([p], [g1], [None], momentum=0.5)
    assert direction.item() == 2.0 and bufs[0].item() == 2.0 and bufs[0] is not g1
    (direction,), bufs = velocity_step([p], [g2], bufs, momentum=0.5)
    assert bufs[0].item() == 0.5 * 2.0 - 1.0 and direction is bufs[0]


# Grid points that differ in every setting, nesterov and momentum 0 mixed in: one GridSGD against one torch.optim.SGD
# per point. Gradients are computed per slice, so only the update rule is compared; it must agree to the last bit.
GRID = [dict(lr=0.05, momentum=0.99, dampening=0.0, nesterov=False, weight_decay=0.0),
        dict(lr=0.02, momentum=0.5, dampening=0.3, nesterov=False, weight_decay=1e-2),
        dict(lr=0.1, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=1e-2),
        dict(lr=0.03, momentum=0.9, dampening=0.0, nesterov=True, weight_decay=1e-3),
        dict(lr=0.07, momentum=0.7, dampening=0.0, nesterov=True, weight_decay=0.0)]


def grid_settings(points: list[dict], dtype: torch.dtype) -> dict:
    return {k: torch.tensor([p[k] for p in points], dtype=torch.bool if k == "nesterov" else dtype)
            for k in points[0]}


def grid_lockstep(dtype: torch.dtype, points: list[dict], settings: dict) -> None:
    torch.manual_seed(0)
    refs = [nn.Sequential(nn.Linear(16, 8), nn.Sigmoid(), nn.Linear(8, 1)).to(dtype) for _ in points]
    ref_opts = [torch.optim.SGD(r.parameters(), **p) for r, p in zip(refs, points)]
    stacked = [torch.stack([list(r.parameters())[i].detach() for r in refs]).requires_grad_() for i in range(4)]
    opt = GridSGD(stacked, settings)
    gen = torch.Generator().manual_seed(1)
    for step in range(STEPS):
        x = torch.randn(32, 16, generator=gen, dtype=dtype)
        y = (torch.rand(32, generator=gen) > 0.5).to(dtype)
        loss = 0
        for k, (ref, ref_opt) in enumerate(zip(refs, ref_opts)):
            ref_opt.zero_grad()
            nn.functional.binary_cross_entropy_with_logits(ref(x).squeeze(-1), y).backward()
            ref_opt.step()
            w1, b1, w2, b2 = (t[k] for t in stacked)
            logits = nn.functional.linear(torch.sigmoid(nn.functional.linear(x, w1, b1)), w2, b2).squeeze(-1)
            loss = loss + nn.functional.binary_cross_entropy_with_logits(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        for k, ref in enumerate(refs):
            for i, p_ref in enumerate(ref.parameters()):
                assert torch.equal(stacked[i][k], p_ref), f"point {k}, parameter {i}: weights differ at step {step}"
                buf_ref = ref_opts[k].state[p_ref].get("momentum_buffer")
                if buf_ref is not None:
                    assert torch.equal(opt.state[stacked[i]][BUFFER_KEY][k], buf_ref), f"point {k}: buffers differ"


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_grid_points_match_torch_sgd_every_step_to_the_bit(dtype: torch.dtype) -> None:
    """The grid's settings are float64 (as GridModule makes them), whatever the parameters' dtype."""
    grid_lockstep(dtype, GRID, grid_settings(GRID, torch.float64))


def test_settings_rounded_to_bfloat16_fail_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The planted bug: bf16 parameters through the batched path, each setting cast to bf16 (0.99 -> 0.98828)."""
    monkeypatch.setattr(momentum_module, "LOW", ())
    with pytest.raises(AssertionError):
        grid_lockstep(torch.bfloat16, GRID, grid_settings(GRID, torch.float64))


def test_grid_with_uniform_settings_as_numbers_matches_too() -> None:
    """Settings shared by every point may be plain numbers (the grid skips the terms no point needs)."""
    points = [dict(GRID[0], lr=lr) for lr in (0.01, 0.05, 0.2)]
    settings = dict(grid_settings(points, torch.float32), momentum=GRID[0]["momentum"], dampening=0.0, nesterov=False,
                    weight_decay=0.0)
    grid_lockstep(torch.float32, points, settings)


def test_a_grid_point_given_another_points_setting_fails_the_check() -> None:
    settings = grid_settings(GRID, torch.float64)
    settings["momentum"] = settings["momentum"].flip(0)
    with pytest.raises(AssertionError):
        grid_lockstep(torch.float64, GRID, settings)


def test_a_buffer_started_on_some_parameters_only_matches_torch_sgd() -> None:
    """A parameter that gets its first gradient a step later than the others (a layer unfrozen late): the rule's
    branch for buffers started on some parameters only, against torch.optim.SGD, to the bit."""
    flavour = dict(momentum=0.9, dampening=0.3, weight_decay=1e-2, nesterov=False)
    gen = torch.Generator().manual_seed(3)
    start = [torch.randn(4, 3, generator=gen), torch.randn(3, generator=gen)]
    ref = [t.clone().requires_grad_() for t in start]
    ours = [t.clone().requires_grad_() for t in start]
    ref_opt = torch.optim.SGD(ref, lr=LR, **flavour)
    our_opt = HandWrittenSGD(ours, lr=LR, **flavour)
    for step in range(6):
        grads = [torch.randn(4, 3, generator=gen), torch.randn(3, generator=gen)]
        for params, opt in ((ref, ref_opt), (ours, our_opt)):
            for p, g in zip(params, grads):
                p.grad = g.clone() if (step > 0 or p.dim() == 2) else None  # the bias joins at step 1
            opt.step()
        for p_ref, p_ours in zip(ref, ours):
            assert torch.equal(p_ref, p_ours), f"step {step}"
            if step > 0 or p_ref.dim() == 2:
                assert torch.equal(ref_opt.state[p_ref]["momentum_buffer"], our_opt.state[p_ours][BUFFER_KEY])
    assert BUFFER_KEY in our_opt.state[ours[1]]
