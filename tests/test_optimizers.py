"""``train.py --model.optimizer CLASS``: any optimizer by class path, its momentum one option (optimizers.py).

Runs train the real configuration shrunk by ``configs/debug.yaml`` (dim 64, 256 samples, 4 steps an epoch).

Bugs these exist to catch: a class path that trains with another lr or momentum than typed (the class's own default
kept), a momentum put where the family does not keep it, an optimizer's state lost across a resume, a schedule that
cycles nothing on a family whose momentum is ``betas[0]``, options with two owners accepted, a bad class that
reaches PyTorch as a traceback.
"""

from pathlib import Path

import pytest
import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import OneCycleLR

from lit_momentum.command import main as train_main
from lit_momentum.optimizers import build_optimizer
from lit_momentum.schedules import group_values
from tests.conftest import TINY_DATA, assert_same_state, load_ckpt, refusal, run_dirs, scalars

STEPS = 20  # debug.yaml: 5 epochs of 4 batches


class ArticleSGD(Optimizer):
    """A researcher's own optimizer, written in this module: the article's momentum ``v = m v + (1 - m) g`` (the
    velocity starts at 0), then ``p -= lr v``; with ``lookahead`` the step is ``(1 - m) g + m v``, an option of its
    own."""

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.9, lookahead: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, lookahead=lookahead))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:  # (Lightning hands the forward and backward over as the closure)
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            m = group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                v = self.state[p].setdefault("velocity", torch.zeros_like(p))
                v.mul_(m).add_(p.grad, alpha=1 - m)
                p.add_(p.grad.lerp(v, m) if group["lookahead"] else v, alpha=-group["lr"])
        return loss


def run(tiny: list[str], root: Path, *args: str) -> Path:
    train_main([*tiny, "--trainer.default_root_dir", str(root), *args])
    (found,) = run_dirs(root)
    return found


def test_a_class_path_sgd_is_the_built_in_sgd_to_the_bit(tiny: list[str], tmp_path: Path) -> None:
    """``--model.optimizer torch.optim.SGD`` (the class-path route: lr and momentum put by the family table) and
    ``sgd`` (the built-in route) train the same, every step's loss and the final weights and buffers."""
    args = ["--model.lr", "0.05", "--model.momentum", "0.8", "--model.weight_decay", "0.01"]
    built_in = run(tiny, tmp_path / "a", *args)
    by_path = run(tiny, tmp_path / "b", *args, "--model.optimizer", "torch.optim.SGD")
    assert scalars(built_in)["train/loss_step"] == scalars(by_path)["train/loss_step"]
    assert_same_state(*(load_ckpt(r / "checkpoints" / "last.ckpt") for r in (built_in, by_path)))
    assert by_path.parent.name == f"{TINY_DATA}_SGD_m0.8_wd0.01_lr0.05"


@pytest.mark.parametrize("optimizer, options, where, name", [
    ("RMSprop", ["--model.optimizer.alpha", "0.95"], "momentum", "RMSprop-alpha0.95_m0.5_lr0.01"),
    ("NAdam", ["--optimizer.momentum_decay", "0.01"], "betas", "NAdam-momentum_decay0.01_b0.5_lr0.01"),
    ("tests.test_optimizers.ArticleSGD", ["--model.optimizer.lookahead", "true"], "momentum",
     "ArticleSGD-lookahead_m0.5_lr0.01"),
], ids=["rmsprop", "nadam", "own-article"])
def test_any_optimizer_trains_with_the_models_lr_and_momentum_and_resumes_bit_for_bit(
        tiny: list[str], tmp_path: Path, optimizer: str, options: list[str], where: str, name: str) -> None:
    """The run's optimizer is the class with its own options and the model's lr and momentum where its family keeps
    it (``momentum`` or ``betas[0]``); stopped after 2 of 5 epochs and continued, it ends bit for bit where the
    straight run ends (the optimizer's state restored) and logs the same losses."""
    args = ["--optimizer", optimizer, *options, "--model.lr", "0.01", "--model.momentum", "0.5",
            "--checkpoint.every_n_epochs", "1"]
    straight = run(tiny, tmp_path / "straight", *args)
    assert straight.parent.name == f"{TINY_DATA}_{name}"
    ckpt = load_ckpt(straight / "checkpoints" / "last.ckpt")
    (group,) = ckpt["optimizer_states"][0]["param_groups"]
    assert group["lr"] == 0.01 and (group["momentum"] if where == "momentum" else group["betas"][0]) == 0.5
    assert ckpt["hyper_parameters"]["optimizer"]["class_path"].endswith(optimizer.rpartition(".")[2])
    assert ckpt["optimizer_states"][0]["state"], "the optimizer kept no state: it did not step"
    stopped = run(tiny, tmp_path / "stopped", *args, "--max_epochs", "2")
    train_main([*tiny, "--trainer.default_root_dir", str(tmp_path / "stopped"), "--ckpt_path",
                str(stopped / "checkpoints" / "last.ckpt")])
    assert_same_state(ckpt, load_ckpt(stopped / "checkpoints" / "last.ckpt"))
    assert scalars(straight)["train/loss_step"] == scalars(stopped)["train/loss_step"]


def test_build_optimizer_puts_lr_and_momentum_in_each_family() -> None:
    """The table, against the classes themselves: momentum, betas[0] (the second kept), none."""
    param = [torch.zeros(1, requires_grad=True)]
    config = lambda path, **kw: {"class_path": path, "init_args": kw}  # noqa: E731
    rms = build_optimizer(config("torch.optim.RMSprop", alpha=0.9), param, 0.03, 0.7)
    nadam = build_optimizer(config("torch.optim.NAdam", betas=(0.9, 0.98)), param, 0.03, 0.7)
    adagrad = build_optimizer(config("torch.optim.Adagrad", lr_decay=0.1), param, 0.03, 0.9)
    assert type(rms) is torch.optim.RMSprop and rms.param_groups[0]["alpha"] == 0.9
    assert group_values(rms) == (0.03, 0.7) and group_values(nadam) == (0.03, 0.7)
    assert nadam.param_groups[0]["betas"] == (0.7, 0.98) and adagrad.param_groups[0]["lr_decay"] == 0.1
    assert group_values(adagrad) == (0.03, 0.0)  # no momentum: train/momentum 0


def test_a_one_cycle_cycles_rmsprops_momentum_and_nadams_beta1(tiny: list[str], tmp_path: Path) -> None:
    """A schedule cycles the family's momentum, as PyTorch's OneCycleLR does on the class itself."""
    for optimizer, kind in (("RMSprop", "torch.optim.RMSprop"), ("NAdam", "torch.optim.NAdam")):
        found = run(tiny, tmp_path / optimizer, "--optimizer", optimizer, "--lr_scheduler", "OneCycleLR",
                    "--lr_scheduler.max_lr", "0.05", "--lr_scheduler_interval", "step")
        opt = build_optimizer({"class_path": kind, "init_args": {}}, [torch.zeros(1, requires_grad=True)], 1e-5, 0.9)
        opt._opt_called = True
        scheduler, values = OneCycleLR(opt, 0.05, total_steps=STEPS), []
        for _ in range(STEPS):
            values.append(group_values(opt))
            scheduler.step()
        curves = scalars(found)
        f32 = lambda v: torch.tensor(v, dtype=torch.float32).tolist()  # noqa: E731 (as TensorBoard stores them)
        assert [v for _, v in curves["train/lr"]] == f32([lr for lr, _ in values])
        assert [v for _, v in curves["train/momentum"]] == f32([m for _, m in values])
        assert len({m for _, m in values}) > 1, "the momentum did not move"


@pytest.mark.parametrize("args, says", [
    (["--model.optimizer", "Adagrad", "--model.momentum", "0.5"], "model.momentum 0.5: Adagrad has no momentum"),
    (["--model.optimizer", "RMSprop", "--model.optimizer.lr", "0.1"], "the learning rate is --model.lr"),
    (["--model.optimizer", "RMSprop", "--model.optimizer.momentum", "0.5"], "momentum is --model.momentum"),
    (["--model.optimizer", "NAdam", "--model.optimizer.betas", "[0.5, 0.99]"], "the first is NAdam's momentum"),
    (["--model.optimizer", "RMSprop", "--model.momentum_impl", "manual"], "SGD's hand-written momentum"),
    (["--model.optimizer", "RMSprop", "--model.nesterov", "true"], "RMSprop takes its own options"),
    (["--model.optimizer", "RMSprop", "--model.optimizer.alpha", "fast"], "--model.optimizer.alpha fast: must be"),
    (["--model.optimizer", "RMSprop", "--model.optimizer.alpah", "0.9"], "--model.optimizer.alpah: "),
    (["--model.optimizer", "Nope"], "--model.optimizer Nope"),
    (["--model.optimizer", "torch.nn.Linear"], "--model.optimizer torch.nn.Linear"),
    (["--model.optimizer", "RMSprop", "--model.optimizer.alpha", "-1"], "--model.optimizer RMSprop: Invalid alpha"),
    (["--model.optimizer", "Adagrad", "--lr_scheduler", "OneCycleLR", "--lr_scheduler.max_lr", "0.1"],
     "must support momentum"),
])
def test_bad_optimizer_options_are_one_line_and_nothing_is_written(tiny: list[str], tmp_path: Path,
                                                                   args: list[str], says: str) -> None:
    message = refusal(train_main, [*tiny, *args])
    assert says in message, message
    assert not (tmp_path / "lightning_logs").exists()
