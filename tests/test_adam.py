"""Adam and AdamW for a grid (``GridAdam``) against ``torch.optim.Adam`` / ``AdamW``, step by step, every grid point
to the bit (``torch.equal``): weights, first and second moments, in float32, float64, bfloat16 and float16 (beta2
0.999 has no bfloat16 value: ``torch.optim.Adam`` computes with it in float32); grids of Adam, AdamW and
SGD (the optimizer an outer axis) against their own train.py runs; bad Adam settings.

Bugs these exist to catch (each planted below, each must fail the comparison): the bias correction dropped; AdamW's
weight decay applied as L2 in the gradient; a point given another point's setting; a rule that rounds twice;
settings rounded to bfloat16 (beta2 0.999 as 1.0).
"""

from pathlib import Path

import pytest
import torch
from torch import nn

import lit_momentum.adam as adam_module
from lit_momentum.adam import GridAdam
from lit_momentum.command import main as train_main
from lit_momentum.sweep import main as sweep_main
from tests.conftest import by_run, grid_run, refusal, run_dirs, run_sweep, scalars, spelled

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
    the grid handed each point's gradient as its run computed it: equal after every step. (In float16 an eps below
    its smallest number, 6e-8, divides by zero in both: eps 1e-4 there, as for any float16 Adam.)"""
    if dtype is torch.float16:
        grid_points = [dict(p, eps=max(p["eps"], 1e-4)) for p in grid_points]
    points = [dict(p, eps=max(p["eps"], 1e-4)) for p in POINTS] if dtype is torch.float16 else POINTS
    singles = nets(dtype)
    refs = [(torch.optim.AdamW if decoupled else torch.optim.Adam)(
        n.parameters(), lr=p["lr"], betas=(p["beta1"], p["beta2"]), eps=p["eps"], weight_decay=p["weight_decay"])
        for n, p in zip(singles, points)]
    stacked = [nn.Parameter(torch.stack([list(n.parameters())[i].detach().clone() for n in nets(dtype)]))
               for i in range(4)]  # (N, ...) per tensor: weight 0, bias 0, weight 1, bias 1
    settings = {k: torch.tensor([p[k] for p in grid_points], dtype=torch.float64) for k in points[0]}
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


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16],
                         ids=["float32", "float64", "bfloat16", "float16"])
@pytest.mark.parametrize("decoupled", [False, True], ids=["adam", "adamw"])
def test_every_grid_point_is_its_own_torch_adam_to_the_bit(dtype: torch.dtype, decoupled: bool) -> None:
    lockstep(dtype, decoupled)


def test_settings_rounded_to_bfloat16_fail_the_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """The planted bug: bf16 parameters through the batched path, each setting cast to bf16 (0.999 -> 1.0)."""
    monkeypatch.setattr(adam_module, "LOW", ())
    with pytest.raises(AssertionError):
        lockstep(torch.bfloat16, False)


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


@pytest.mark.slow
def test_each_grid_point_of_a_mixed_sgd_adam_adamw_sweep_equals_its_own_train_py_run(tiny: list[str],
                                                                                        tmp_path: Path) -> None:
    """The optimizer as an outer axis (one grid each), and Adam's own axes: every compared point equals its single
    ``train.py --model.optimizer ...`` run within 1e-5 in every epoch's loss (the forward sums in another order, by
    an ulp: not to the bit; the update itself is, see above)."""
    epochs = 15
    rows = by_run(run_sweep(tiny, tmp_path / "mixed", "--model.optimizer", "sgd", "adam", "adamw",
                            "--lr", "0.01", "--momentum", "0", "0.9", "--weight_decay", "0", "0.1",
                            "--max_epochs", str(epochs)))
    rows.update(by_run(run_sweep(tiny, tmp_path / "betas", "--model.optimizer", "adamw", "--lr", "0.02",
                                 "--momentum", "0.5", "--beta2", "0.9", "--eps", "1e-4", "--max_epochs", str(epochs))))
    compared = {"optimizersgd_lr0.01_m0.9_wd0.1_seed0": "mixed", "optimizeradam_adam_lr0.01_m0.9_wd0_seed0": "mixed",
                "optimizeradamw_adamw_lr0.01_m0.9_wd0.1_seed0": "mixed",
                "adamw_lr0.02_m0.5_b2_0.9_eps0.0001_seed0": "betas"}
    for name, grid in compared.items():
        r = rows[spelled(name)]
        root = tmp_path / "single" / name
        impl = ["--model.momentum_impl", "manual"] if r["optimizer"] == "sgd" else []
        train_main([*tiny, "--trainer.default_root_dir", str(root), "--max_epochs", str(epochs), "--model.optimizer",
                    r["optimizer"], *impl, "--model.lr", r["lr"], "--model.momentum", r["momentum"],
                    "--model.weight_decay", r["weight_decay"], "--model.beta2", r["beta2"], "--model.eps", r["eps"]])
        single, point = scalars(run_dirs(root)[0])["train/loss"], scalars(grid_run(tmp_path / grid, name))["train/loss"]
        assert [s for s, _ in single] == [s for s, _ in point] and len(point) == epochs
        assert max(abs(a - b) for (_, a), (_, b) in zip(single, point)) <= 1e-5, name
        assert point[0][1] - point[-1][1] > 1e-3, f"{name} did not train"


BAD_ADAM = [
    (["--model.optimizer", "adam", "--momentum", "1.0"], "model.momentum must be in [0, 1)"),
    (["--model.optimizer", "adam", "--beta2", "1.0"], "model.beta2 must be in [0, 1)"),
    (["--model.optimizer", "adamw", "--eps", "0"], "model.eps must be > 0"),
    (["--beta2", "0.99"], "model.beta2 (0.99) is Adam's; model.optimizer sgd has none"),
    (["--model.optimizer", "adam", "--dampening", "0.5"], "model.optimizer adam takes momentum (as beta1)"),
    (["--model.optimizer", "adam", "--nesterov", "true"], "nesterov false"),
]


@pytest.mark.parametrize("args, words", BAD_ADAM, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_adam_settings_are_one_line_and_write_nothing(tiny: list[str], tmp_path: Path, args: list[str],
                                                          words: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    message = refusal(sweep_main, [*tiny, "--out", str(tmp_path / "out"), "--lr", "0.01", *args])
    assert words in message, message
    single = [a.replace("--", "--model.", 1) if a.startswith("--") and "." not in a else a for a in args]
    assert words in refusal(train_main, [*tiny, *single])
    assert not list(tmp_path.iterdir())


def test_an_adam_grid_continues_bit_for_bit_and_freezes_a_diverged_point_with_its_moments(tiny: list[str],
                                                                                          tmp_path: Path) -> None:
    """Moments and step count are checkpointed: 2 epochs, continued to 4, end where 4 straight end (weights,
    moments, curves); a point at lr 1e4 diverges and is frozen: its weights stay 0 (its lr is 0; its eps is kept,
    else Adam would divide 0 by 0), its moments are finite (the gradients of its zero network since)."""
    from tests.conftest import assert_same_state, load_ckpt

    grid = ["--model.optimizer", "adam", "--lr", "0.01", "1e4", "--momentum", "0.9", "--checkpoint.every_n_epochs", "1"]
    run_sweep(tiny, tmp_path / "straight", *grid, "--max_epochs", "4")
    run_sweep(tiny, tmp_path / "stopped", *grid, "--max_epochs", "2")
    rows = run_sweep(tiny, tmp_path / "stopped", *grid, "--max_epochs", "4", "--ckpt_path",
                     str(tmp_path / "stopped" / "last.ckpt"))
    a, b = load_ckpt(tmp_path / "straight" / "last.ckpt"), load_ckpt(tmp_path / "stopped" / "last.ckpt")
    assert_same_state(a, b)
    assert a["optimizer_states"][0]["param_groups"][0]["step"] == b["optimizer_states"][0]["param_groups"][0]["step"]
    assert (tmp_path / "stopped" / "summary.csv").read_text() == (tmp_path / "straight" / "summary.csv").read_text()
    bad = next(r for r in rows if r["lr"] == "10000.0")
    assert bad["diverged_epoch"] != "" and next(r for r in rows if r["lr"] == "0.01")["diverged_epoch"] == ""
    moments = [t for s in b["optimizer_states"][0]["state"].values() for t in s.values()]
    assert moments and all(torch.isfinite(t).all() for t in moments)  # zeroed when frozen: the inf never came back
    assert all(not t[1].any() for k, t in b["state_dict"].items() if k.startswith("net.params"))  # lr 0 since
