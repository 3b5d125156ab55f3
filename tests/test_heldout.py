"""Held-out data through the real entry points: validation every epoch, ``python train.py test`` on a checkpoint,
MNIST-1D, a user's own data module by class path, the memorisation of random labels, and the data options refused.

Bugs these exist to catch: validation points logged off the training curve's steps or during Lightning's sanity
check; ``test`` evaluating fresh instead of the checkpoint's weights, or writing files; a user's data module or its
class count silently ignored (the model built for the default data); a resume that loses ``val/acc_best``.
"""

import csv
import re
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from lit_momentum.command import main
from lit_momentum.compare import main as compare_main
from lit_momentum.data import MNIST1DDataModule
from lit_momentum.loss import loss_and_predictions
from lit_momentum.model import MomentumModule
from lit_momentum.sweep import main as sweep_main
from tests.conftest import CONFIGS, assert_same_state, load_ckpt, refusal, run_dirs, run_train, scalars

MNIST1D = ["--config", str(CONFIGS / "mnist1d.yaml")]


@pytest.mark.slow
def test_mnist1d_logs_validation_with_training_and_its_checkpoint_tests(tiny: list[str], tmp_path: Path) -> None:
    main([*tiny, *MNIST1D, "--max_epochs", "4"])  # tiny after mnist1d: debug.yaml's sizes apply
    (run,) = run_dirs(tmp_path)
    logged = scalars(run)
    train_steps = [s for s, _ in logged["train/loss"]]
    assert len(train_steps) == 4 and all([s for s, _ in logged[t]] == train_steps for t in ("val/loss", "val/acc"))
    accs = [v for _, v in logged["val/acc"]]
    assert [v for _, v in logged["val/acc_best"]] == [max(accs[: i + 1]) for i in range(4)]
    ckpt = run / "checkpoints" / "last.ckpt"
    before = sorted(tmp_path.rglob("*"))
    proc = run_train("test", *tiny, *MNIST1D, "--ckpt_path", str(ckpt), cwd=tmp_path)  # what a user sees printed
    assert sorted(tmp_path.rglob("*")) == before, "a test wrote files"
    lines = proc.stdout.splitlines()  # where from, then the metrics rounded as the bar rounds them; nothing else
    assert lines[0] == (f"tested {ckpt} on MNIST1DDataModule's test set, with the data the run was trained on "
                        "(num_samples 256, dim 64; from the checkpoint)") and len(lines) == 3, proc.stdout
    assert proc.stderr == "", proc.stderr
    printed = {k: float(v) for k, v in re.findall(r"(test/\w+)\s+([\d.]+)", proc.stdout)}
    # the same numbers from the checkpoint's weights, evaluated here by hand
    state = load_ckpt(ckpt)
    model = MomentumModule(**{k: v for k, v in state["hyper_parameters"].items() if not k.startswith("_")})
    model.load_state_dict(state["state_dict"])
    x, y = MNIST1DDataModule(**state["data_config"]["init_args"]).splits["test"]
    with torch.no_grad():
        loss, preds = loss_and_predictions(model(x), y)
    assert printed["test/acc"] == pytest.approx((preds == y).float().mean().item(), rel=5e-4)  # 4 digits
    assert printed["test/loss"] == pytest.approx(loss.item(), rel=5e-4)


def test_random_labels_are_memorised_and_held_out_accuracy_stays_at_chance(tiny: list[str], tmp_path: Path) -> None:
    main([*tiny, "--config", str(CONFIGS / "adam.yaml"), "--model.lr", "0.01", "--data.val_samples", "256",
          "--max_epochs", "80"])
    logged = scalars(run_dirs(tmp_path)[0])
    assert logged["train/acc"][-1][1] > 0.95
    assert abs(logged["val/acc"][-1][1] - 0.5) < 0.1  # 256 random labels: chance is 0.5 +- 0.03
    assert logged["val/loss"][-1][1] > logged["val/loss"][0][1], "held-out loss falls on random labels"


OWN_MODULE = '''
import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset


class Blobs(L.LightningDataModule):
    """Three Gaussian blobs in 5 dimensions, served the ordinary way (a Dataset, a DataLoader)."""

    def __init__(self, n: int = 300, batch_size: int = 32):
        super().__init__()
        self.dim, self.num_classes, self.batch_size = 5, 3, batch_size
        gen = torch.Generator().manual_seed(0)
        self.y = torch.arange(n) % 3
        self.x = torch.randn(n, 5, generator=gen) + 3 * torch.nn.functional.one_hot(self.y, 5).float()

    def train_dataloader(self):
        return DataLoader(TensorDataset(self.x, self.y), batch_size=self.batch_size, shuffle=True)

    def val_dataloader(self):
        return DataLoader(TensorDataset(self.x, self.y), batch_size=100)
'''


@pytest.mark.slow
def test_a_data_module_outside_the_package_trains_by_class_path(tiny: list[str], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_data.py").write_text(textwrap.dedent(OWN_MODULE))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # where the user's package is importable
    run_train(*tiny, "--data", "my_data.Blobs", "--data.n", "600", "--model.net.hidden", "[16]", "--model.lr", "0.5",
              "--max_epochs", "6", cwd=tmp_path)
    (run,) = run_dirs(tmp_path)
    state = load_ckpt(run / "checkpoints" / "last.ckpt")
    assert state["state_dict"]["net.0.weight"].shape == (16, 5)  # the data's dim
    assert state["state_dict"]["net.2.weight"].shape == (3, 16)  # three classes: three logits
    assert state["data_config"] == {"class_path": "my_data.Blobs", "init_args": {"n": 600, "batch_size": 32}}
    logged = scalars(run)
    assert len(logged["train/loss_step"]) == 6 * 19 and logged["val/acc"][-1][1] > 0.9  # it learnt the blobs
    monkeypatch.syspath_prepend(str(tmp_path))  # (continued in this process: the module importable here too)
    main([*tiny[2:], "--max_epochs", "7", "--ckpt_path", str(run / "checkpoints" / "last.ckpt")])  # without
    # debug.yaml, whose data options are the default data module's
    assert len(scalars(run)["train/loss_step"]) == 7 * 19, "continued on other data than its own"


BAD_DATA = [
    (["--data", "Nope"], "--data Nope: no such data module", "MNIST1DDataModule"),
    (["--data", "torch.nn.Linear"], "--data torch.nn.Linear: not a LightningDataModule", "RandomDataModule"),
    (["--data", "nosuch_pkg.Thing"], "--data nosuch_pkg.Thing: cannot import it", "nosuch_pkg"),
    (["--data", "MNIST1DDataModule", "--data.bogus", "1"], "--data.bogus", "MNIST1DDataModule has no such option"),
    (["--data", "tests.test_data.NoClasses"], "--data NoClasses", "num_classes"),
    (["--data", "MNIST1DDataModule", "--data.val_fraction", "1"], "data.val_fraction", "[0, 1)"),
    (["--model.net.hidden", "[64, 0]"], "model.net.hidden", ">= 1"),
    (["--model.net.activation", "swish"], "model.net.activation", "relu"),
    (["test"], "test", "--ckpt_path"),
]


@pytest.mark.parametrize("args, option, allowed", BAD_DATA, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_data_options_are_one_clear_line_and_write_nothing(tiny: list[str], tmp_path: Path, args: list[str],
                                                              option: str, allowed: str,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    args = ["test", *tiny] if args == ["test"] else [*tiny, *args]
    message = refusal(main, args)
    assert option in message and allowed in message, message
    assert not list(tmp_path.iterdir())


def test_testing_data_without_a_test_set_is_one_line(tiny: list[str], tmp_path: Path) -> None:
    main([*tiny, "--max_epochs", "1"])
    ckpt = run_dirs(tmp_path)[0] / "checkpoints" / "last.ckpt"
    message = refusal(main, ["test", *tiny, "--ckpt_path", str(ckpt)])
    assert message == "error: test: RandomDataModule has no test set"


def test_a_resumed_run_with_validation_ends_where_a_straight_one_ends(tiny: list[str], tmp_path: Path) -> None:
    config = [*tiny, *MNIST1D, "--model.lr", "0.1"]  # large enough that the best val/acc is not the last
    main([*config, "--trainer.default_root_dir", str(tmp_path / "straight"), "--max_epochs", "6"])
    main([*config, "--trainer.default_root_dir", str(tmp_path / "split"), "--max_epochs", "3"])
    (first,) = run_dirs(tmp_path / "split")
    # continued with no config (and so other checkpoint options): the checkpoint's model and data
    main([*tiny, "--trainer.default_root_dir", str(tmp_path / "split"), "--max_epochs", "6", "--ckpt_path",
          str(first / "checkpoints" / "last.ckpt")])
    (whole,) = run_dirs(tmp_path / "straight")
    a, b = load_ckpt(whole / "checkpoints" / "last.ckpt"), load_ckpt(first / "checkpoints" / "last.ckpt")
    assert_same_state(a, b)  # the best val/acc so far included
    for tag in ("train/loss", "val/loss", "val/acc", "val/acc_best"):
        assert scalars(whole)[tag] == scalars(first)[tag], tag


def test_compare_on_mnist1d_reports_validation_and_test_per_seed(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    compare_main([*MNIST1D, "--config", str(CONFIGS / "debug.yaml"), "--variants", "sgd", "manual", "--seeds", "0",
                  "1", "--max_epochs", "3", "--out", str(out)])
    with open(out / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["variant"], r["seed"]) for r in rows] == [("sgd", "0"), ("manual", "0"), ("sgd", "1"), ("manual", "1")]
    for r in rows:
        logged = scalars(out / r["run"] / f"version_{r['seed']}")  # a version per seed
        accs = [v for _, v in logged["val/acc"]]
        assert float(r["best_val_acc"]) == pytest.approx(max(accs))
        assert int(r["epoch_best_val_acc"]) == accs.index(max(accs))
        assert float(r["val_loss"]) == pytest.approx(logged["val/loss"][-1][1])
        assert 0 <= float(r["test_acc"]) <= 1 and float(r["test_loss"]) > 0


def test_the_sweep_takes_the_data_options(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        sweep_main([*MNIST1D, "--data.iid_noise_scale", "0.1", "--print_config"])
    assert exit_.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["data"]["class_path"] == "lit_momentum.data.MNIST1DDataModule"
    assert printed["data"]["init_args"]["iid_noise_scale"] == 0.1
    assert printed["model"]["net"]["init_args"]["hidden"] == [100, 100]
