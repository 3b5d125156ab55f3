"""Every Lightning precision through train.py and the sweep: the data reaches the model in the dtype it computes in,
the weights are in that dtype, the settings are never rounded to it, and float64 makes the hand-written momentum
equal to torch.optim.SGD to the last bit end to end. Under autocast the grid still reads one copy of the batch.

Bugs these exist to catch: a batch (or the summary's example input) left in float32 beside float64 or bf16 weights
(a dtype error at the first product); per-point settings rounded to the training precision; a batch expanded
before autocast casts it (one copy per grid point every step).
"""

from pathlib import Path

import pytest
import torch

from lit_momentum.command import main as train_main
from lit_momentum.nets import ConvNet1D
from lit_momentum.sweep.grid import GridModule
from lit_momentum.sweep.main import main as sweep_main
from tests.conftest import assert_same_state, load_ckpt, refusal, run_dirs, scalars

WEIGHTS = {"32-true": torch.float32, "64-true": torch.float64, "bf16-true": torch.bfloat16,
           "16-true": torch.float16, "bf16-mixed": torch.float32, "16-mixed": torch.float32}


@pytest.mark.parametrize("precision", list(WEIGHTS))
def test_train_py_trains_in_every_precision(tiny: list[str], tmp_path: Path, precision: str) -> None:
    train_main([*tiny, "--precision", precision, "--max_epochs", "3", "--model.lr", "0.5",
                "--trainer.enable_model_summary", "true"])  # the summary runs a forward pass on an example input
    (run,) = run_dirs(tmp_path)
    losses = [v for _, v in scalars(run)["train/loss"]]
    assert len(losses) == 3 and all(0 < v < 1 for v in losses) and losses[-1] < losses[0]
    state = load_ckpt(run / "checkpoints" / "last.ckpt")["state_dict"]
    assert state["net.0.weight"].dtype == WEIGHTS[precision]


@pytest.mark.parametrize("precision", [p for p in WEIGHTS if p != "16-mixed"])
def test_the_sweep_trains_in_every_precision_but_one_and_keeps_its_settings_exact(
        tiny: list[str], tmp_path: Path, precision: str) -> None:
    out = tmp_path / "grid"
    sweep_main([*tiny, "--precision", precision, "--lr", "0.3", "0.7", "--momentum", "0.9", "0.99", "--max_epochs",
                "3", "--out", str(out), "--trainer.enable_model_summary", "true"])
    state = load_ckpt(out / "last.ckpt")
    assert state["state_dict"]["net.params.0"].dtype == WEIGHTS[precision]
    velocity = next(iter(state["optimizer_states"][0]["state"].values()))["velocity"]
    assert velocity.dtype == WEIGHTS[precision] and torch.isfinite(velocity).all()
    assert (out / "summary.csv").read_text().count("\n") == 5


def test_the_sweep_refuses_16_mixed_with_the_reason(tiny: list[str], tmp_path: Path) -> None:
    message = refusal(sweep_main, [*tiny, "--precision", "16-mixed", "--lr", "0.1", "--out", str(tmp_path / "o")])
    assert "gradient scaler would skip every point's step" in message and not (tmp_path / "o").exists()


def test_per_point_settings_are_float64_whatever_the_precision() -> None:
    """Made at fit start from the points, after Lightning changed the model's dtype: bf16 would make 0.99 0.9883."""
    model = GridModule(dim=8, lr=[1e-5, 0.3], momentum=[0.9, 0.99]).to(torch.bfloat16)
    model.configure_optimizers()
    assert model.point_settings["momentum"].dtype == torch.float64
    assert sorted(set(model.point_settings["momentum"].tolist())) == [0.9, 0.99]
    assert sorted(set(model.point_settings["lr"].tolist())) == [1e-5, 0.3]


def test_float64_manual_and_builtin_momentum_end_identical(tiny: list[str], tmp_path: Path) -> None:
    """50 steps of 64-true: the hand-written rule and torch.optim.SGD leave the same weights and buffers, bit for
    bit (as they do in float32)."""
    for impl in ("manual", "builtin"):
        train_main([*tiny, "--precision", "64-true", "--model.momentum_impl", impl, "--model.lr", "0.5",
                    "--model.weight_decay", "0.01", "--model.dampening", "0.1", "--trainer.max_steps", "50",
                    "--max_epochs", "-1", "--trainer.default_root_dir", str(tmp_path / impl)])
    manual, builtin = (load_ckpt(run_dirs(tmp_path / i)[0] / "checkpoints" / "last.ckpt") for i in ("manual",
                                                                                                    "builtin"))
    assert manual["global_step"] == builtin["global_step"] == 50
    assert manual["state_dict"]["net.0.weight"].dtype == torch.float64
    assert_same_state(manual, builtin)


def saved_under_bf16_autocast(model: GridModule, x: torch.Tensor) -> list[torch.Tensor]:
    saved: list[torch.Tensor] = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            model(x)
    return saved


def test_under_autocast_the_grid_reads_one_copy_of_the_batch() -> None:
    """The batch reaches the first product once for every point, never as N copies. The MLP (products batched by
    hand): the expanded batch is a view, stride 0 over the points, in the autocast dtype (cast first; expanded
    first, autocast would make N real copies every step). Any other network (vmap): the batch is not batched."""
    mlp = GridModule(dim=64, lr=[0.1, 0.2, 0.3], momentum=0.9)
    batch = [t for t in saved_under_bf16_autocast(mlp, torch.randn(32, 64)) if t.shape == (3, 64, 32)]
    assert batch and all(t.stride()[0] == 0 and t.dtype == torch.bfloat16 for t in batch), [t.stride() for t in batch]
    cnn = GridModule(dim=40, num_classes=10, net=ConvNet1D, lr=[0.1, 0.2, 0.3], momentum=0.9)
    saved = saved_under_bf16_autocast(cnn, torch.randn(32, 40))
    assert [t for t in saved if t.shape == (32, 1, 40)] and not [t for t in saved if t.shape[:2] == (3, 32)
                                                                 and t.shape[-1] == 40]


def test_float32_matmul_precision_is_an_option_with_pytorchs_default(tiny: list[str], tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture) -> None:
    before = torch.get_float32_matmul_precision()
    try:
        train_main([*tiny, "--max_epochs", "1", "--float32_matmul_precision", "high"])
        assert torch.get_float32_matmul_precision() == "high"
        (run,) = run_dirs(tmp_path)
        assert "float32_matmul_precision: high" in (run / "config.yaml").read_text()
    finally:
        torch.set_float32_matmul_precision(before)
    monkeypatch.chdir(tmp_path)
    assert "must be one of 'highest', 'high', 'medium'" in refusal(train_main, ["--float32_matmul_precision", "x"])
    with pytest.raises(SystemExit):
        train_main(["--print_config"])
    assert f"float32_matmul_precision: {before}" in capsys.readouterr().out  # unless told: PyTorch's own setting


def test_validation_counts_are_exact_in_bf16() -> None:
    """The grid's validation sums correct predictions per point: in bf16 a count above 256 would be rounded (to a
    multiple of 8 near 2000); summed in float64 it is the exact count."""
    torch.manual_seed(0)
    model = GridModule(dim=8, lr=[0.1, 0.2, 0.3], seeds=[0, 1, 2]).to(torch.bfloat16)
    x, y = torch.randn(2000, 8).bfloat16(), (torch.rand(2000) > 0.5).float()
    model.validation_step((x, y), 0)
    exact = model.point_losses(model(x), y)[1].sum(1)  # int64 counts, (N,)
    sums = model.val_mean.sums[-1]  # (3, N): loss sum, hits, samples
    assert torch.equal(sums[1], exact.double()) and (exact % 8 != 0).any()
    assert sums.dtype == torch.float64 and sums[2].tolist() == [2000.0] * 9
