"""The data modules: the article's data, MNIST-1D as its package makes it, a batch order fixed by (seed, epoch) alone,
and the contract any data module is checked against.

Bugs these exist to catch: a batch order that depends on the global RNG, the world size or the resume point; a
held-out set that changes the training data; MNIST-1D that is not the package's; a contract violation that goes
unnoticed until training, ends in a traceback, writes files first, or trains silently to a negative loss.
"""

import random
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.utilities.model_helpers import is_overridden

from lit_momentum.command import main as train_main
from lit_momentum.data import EpochBatches, MNIST1DDataModule, RandomDataModule, check_contract, data_name
from lit_momentum.sweep import main as sweep_main
from tests.conftest import refusal


def epoch_indices(sampler: EpochBatches, epoch: int) -> list[torch.Tensor]:
    sampler.set_epoch(epoch)
    return list(sampler)


def test_labels_half_zero_half_one_and_same_data_per_seed() -> None:
    x, y = RandomDataModule(dim=10, num_samples=100, seed=3).splits["train"]
    assert x.shape == (100, 10) and x.dtype == torch.float32
    assert y[:50].eq(0).all() and y[50:].eq(1).all()
    assert torch.equal(x, RandomDataModule(dim=10, num_samples=100, seed=3).splits["train"][0])
    assert not torch.equal(x, RandomDataModule(dim=10, num_samples=100, seed=4).splits["train"][0])


def test_a_held_out_random_set_leaves_the_training_data_as_it_was() -> None:
    """``val_samples`` adds a set drawn after the training set: the article's run does not change with it."""
    plain, held = RandomDataModule(dim=10, num_samples=100), RandomDataModule(dim=10, num_samples=100, val_samples=40)
    assert not is_overridden("val_dataloader", plain, L.LightningDataModule), "no validation set: no val loop"
    assert is_overridden("val_dataloader", held, L.LightningDataModule)
    assert all(torch.equal(a, b) for a, b in zip(plain.splits["train"], held.splits["train"]))
    x_val, y_val = held.splits["val"]
    assert x_val.shape == (40, 10) and y_val[:20].eq(0).all() and y_val[20:].eq(1).all()
    assert not any(torch.equal(x_val[0], row) for row in held.splits["train"][0])  # new samples, not a copy


def test_batches_cover_every_sample_once_and_reshuffle_per_epoch() -> None:
    loader = RandomDataModule(dim=8, num_samples=200, batch_size=64).train_dataloader()
    sampler = loader.sampler
    e0, e1 = epoch_indices(sampler, 0), epoch_indices(sampler, 1)
    assert [len(b) for b in e0] == [64, 64, 64, 8] and len(loader) == 4
    assert torch.equal(torch.cat(e0).sort().values, torch.arange(200))
    assert not torch.equal(torch.cat(e0), torch.cat(e1))
    x, y = next(iter(loader))  # whole batches cut from the tensors
    assert x.shape == (64, 8) and y.shape == (64,)


def test_evaluation_batches_come_in_order_in_their_own_size() -> None:
    dm = RandomDataModule(dim=8, num_samples=200, batch_size=16, val_samples=100, eval_batch_size=30)
    batches = list(dm.val_dataloader())
    assert [len(y) for _, y in batches] == [30, 30, 30, 10]
    assert torch.equal(torch.cat([x for x, _ in batches]), dm.splits["val"][0])


def test_order_depends_on_seed_and_epoch_not_global_rng() -> None:
    sampler = RandomDataModule(dim=8, num_samples=100).train_dataloader().sampler
    torch.manual_seed(123)
    first = epoch_indices(sampler, 5)
    torch.manual_seed(999)
    torch.rand(10)
    again = epoch_indices(sampler, 5)
    assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_ranks_split_each_global_batch() -> None:
    """Two ranks together see exactly the single-process batches, step by step."""
    single = EpochBatches(100, 32, seed=0, device=torch.device("cpu"))
    ranks = [EpochBatches(100, 32, seed=0, device=torch.device("cpu"), rank=r, world_size=2) for r in (0, 1)]
    for whole, a, b in zip(epoch_indices(single, 2), epoch_indices(ranks[0], 2), epoch_indices(ranks[1], 2)):
        assert torch.equal(torch.cat([a, b]), whole)


def test_mnist1d_is_the_packages_own_dataset_split_three_ways() -> None:
    """With its defaults the module holds exactly what ``mnist1d.data.make_dataset`` makes (the paper's dataset):
    the 4000 training signals split into training and validation, the 1000 test signals untouched."""
    from mnist1d.data import get_dataset_args, make_dataset

    reference = make_dataset(get_dataset_args())
    random.seed(7)
    np.random.seed(7)
    dm = MNIST1DDataModule()
    assert random.random() == random.Random(7).random(), "Python's global generator was touched"
    assert np.random.rand() == np.random.RandomState(7).rand(), "NumPy's global generator was touched"
    (x, y), (x_val, y_val), (x_test, y_test) = (dm.splits[s] for s in ("train", "val", "test"))
    assert (len(x), len(x_val), len(x_test)) == (3600, 400, 1000) and dm.dim == 40 and dm.num_classes == 10
    assert np.array_equal(torch.cat([x, x_val]).numpy(), reference["x"].astype(np.float32))
    assert np.array_equal(torch.cat([y, y_val]).numpy(), reference["y"])
    assert np.array_equal(x_test.numpy(), reference["x_test"].astype(np.float32))
    assert set(y_test.tolist()) == set(range(10))


def test_mnist1d_generator_settings_are_options() -> None:
    plain, noisy = MNIST1DDataModule(num_samples=200), MNIST1DDataModule(num_samples=200, iid_noise_scale=0.5)
    assert not torch.equal(plain.splits["train"][0], noisy.splits["train"][0])
    assert MNIST1DDataModule(num_samples=200, dim=64).splits["test"][0].shape == (40, 64)


@pytest.mark.parametrize("cls, kwargs, option", [
    (RandomDataModule, dict(dim=1), "data.dim"), (RandomDataModule, dict(num_samples=101), "data.num_samples"),
    (RandomDataModule, dict(batch_size=0), "data.batch_size"), (RandomDataModule, dict(val_samples=3), "val_samples"),
    (MNIST1DDataModule, dict(val_fraction=1.0), "data.val_fraction"), (MNIST1DDataModule, dict(num_samples=5), "20"),
    (MNIST1DDataModule, dict(iid_noise_scale=-1.0), "data.iid_noise_scale"),
])
def test_bad_values_name_the_option(cls: type, kwargs: dict, option: str) -> None:
    with pytest.raises(ValueError, match=option):
        cls(**kwargs)


class NoClasses(L.LightningDataModule):
    def __init__(self) -> None:
        super().__init__()
        self.dim = 3

    def train_dataloader(self) -> list:
        return []


class NoLoader(L.LightningDataModule):
    dim, num_classes = 3, 2


@pytest.mark.parametrize("dm, missing", [(NoClasses(), "num_classes"), (NoLoader(), "train_dataloader")])
def test_the_contract_names_what_a_data_module_lacks(dm: L.LightningDataModule, missing: str) -> None:
    with pytest.raises(ValueError, match=missing):
        check_contract(dm)
    assert check_contract(RandomDataModule(dim=4, num_samples=10)).dim == 4


BAD_MODULES = '''
import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset


class Own(L.LightningDataModule):
    """32 samples of dim 4, labels 0/1; each subclass breaks one thing of the contract."""

    dim, num_classes = 4, 2

    def __init__(self, n: int = 32):
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.x, self.y = torch.randn(n, 4, generator=gen), torch.arange(n) % 2

    def batches(self):
        return DataLoader(TensorDataset(self.x, self.y), batch_size=8, shuffle=True)

    def train_dataloader(self):
        return self.batches()


class WrongDim(Own):
    dim = 5

class ImageShaped(Own):
    dim = 64
    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.zeros(32, 8, 8), self.y), batch_size=8)

class Float64(Own):
    def train_dataloader(self):
        return DataLoader(TensorDataset(self.x.double(), self.y), batch_size=8)

class Dicts(Own):
    def train_dataloader(self):
        return [{"x": self.x[:8], "y": self.y[:8]}]

class OneToTen(Own):
    num_classes = 10
    def train_dataloader(self):
        return DataLoader(TensorDataset(self.x, torch.arange(32) % 10 + 1), batch_size=32)

class DigitsAsBinary(Own):
    def train_dataloader(self):
        return DataLoader(TensorDataset(self.x, torch.arange(32) % 10), batch_size=32)

class PlusMinusOne(Own):
    def train_dataloader(self):
        return DataLoader(TensorDataset(self.x, (self.y * 2 - 1).float()), batch_size=8)

class BadValidation(Own):
    def val_dataloader(self):
        return DataLoader(TensorDataset(self.x, self.y + 0.5), batch_size=8)

class Empty(Own):
    def train_dataloader(self):
        return DataLoader(TensorDataset(self.x[:0], self.y[:0]), batch_size=8)

class EmptyValidation(Own):
    def val_dataloader(self):
        return DataLoader(TensorDataset(self.x[:0], self.y[:0]), batch_size=8)

class SetupFails(Own):
    def setup(self, stage):
        raise RuntimeError("no data at /nowhere")

class InitFails(Own):
    def __init__(self):
        raise FileNotFoundError("/data/signals.npy is missing")

class LaterLabelsOutOfRange(Own):
    """Labels 0/1 in the first batch (the one checked), 0/3 after: only the loss can tell."""
    def train_dataloader(self):
        late = torch.where(torch.arange(32) >= 8, self.y * 3, self.y).float()
        return DataLoader(TensorDataset(self.x, late), batch_size=8)
'''

BAD_BATCHES = [
    ("WrongDim", "the train batches have inputs x of shape (8, 4); the data module says dim 5"),
    ("ImageShaped", "inputs x of shape (8, 8, 8); the data module says dim 64, so x must be (B, 64)"),
    ("Float64", "inputs of dtype torch.float64; the model computes in float32"),
    ("Dicts", "must be pairs (x, y) of tensors; got a dict"),
    ("OneToTen", "labels from 1 to 10; with num_classes 10 they must be in 0 .. 9"),
    ("DigitsAsBinary", "labels from 0 to 9; with num_classes 2 they must be in 0 .. 1"),
    ("PlusMinusOne", "(binary labels: 0 and 1, not -1 and 1)"),
    ("BadValidation", "the val batches have labels that are not whole numbers"),
    ("Empty", "the training set is empty (train_dataloader() gives no batch): give it samples"),
    ("EmptyValidation", "the validation set is empty (val_dataloader() gives no batch): give it samples or no "
                        "val_dataloader"),
    ("SetupFails", "its setup('fit') failed: RuntimeError: no data at /nowhere"),
    ("InitFails", "/data/signals.npy is missing"),
]


@pytest.mark.parametrize("cls, words", BAD_BATCHES, ids=[c for c, _ in BAD_BATCHES])
@pytest.mark.parametrize("entry", ["train.py", "sweep"])
def test_a_data_module_is_checked_on_a_real_batch_in_one_line_before_anything_is_written(
        cls: str, words: str, entry: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bad_data.py").write_text(BAD_MODULES)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    main, out = (sweep_main, ["--out", str(tmp_path / "out"), "--lr", "0.1", "0.2"]) if entry == "sweep" else (
        train_main, [])
    message = refusal(main, ["--data", f"bad_data.{cls}", "--model.net.hidden", "[4]", "--max_epochs", "1", *out])
    assert f"--data {cls}" in message and words in message, message
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "__pycache__") == ["bad_data.py"]


def test_a_float64_batch_trains_in_float64(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bad_data.py").write_text(BAD_MODULES)
    monkeypatch.syspath_prepend(str(tmp_path))
    train_main(["--data", "bad_data.Float64", "--precision", "64-true", "--max_epochs", "1", "--model.net.hidden",
                "[4]", "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false"])
    assert (tmp_path / "lightning_logs").is_dir()


@pytest.mark.parametrize("entry", ["train.py", "sweep"])
def test_a_negative_loss_stops_the_run_like_a_non_finite_one(entry: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Labels out of range after the first batch: BCE with a target of 3 goes negative as the model fits it."""
    (tmp_path / "bad_data.py").write_text(BAD_MODULES)
    monkeypatch.syspath_prepend(str(tmp_path))
    args = ["--data", "bad_data.LaterLabelsOutOfRange", "--model.net.hidden", "[4]", "--max_epochs", "50",
            "--trainer.default_root_dir", str(tmp_path), "--trainer.enable_progress_bar", "false"]
    if entry == "sweep":
        message = refusal(sweep_main, [*args, "--lr", "1", "2", "--out", str(tmp_path / "out")])
    else:
        message = refusal(train_main, [*args, "--model.lr", "1"])
    assert "cannot be negative: labels outside 0 .. num_classes - 1" in message, message


def test_a_runs_name_carries_the_datas_options_a_directory_name_can_hold() -> None:
    """Options that differ from their defaults and change what is trained, in the run's name; not a path (it would
    nest the run's directory), a list, a loader's workers or the evaluation batch."""

    class MyDataModule:
        def __init__(self, root: str = "data", mode: str = "clean", n: int = 100, workers: int = 0,
                     classes: list | None = None) -> None:
            pass

    given = {"root": "/scratch/me/data", "mode": "noisy", "n": 50, "workers": 4, "classes": [1, 2]}
    assert data_name(MyDataModule(), given) == "My-modenoisy-n50"
    assert data_name(MyDataModule(), {"root": "data", "mode": "clean", "n": 100}) == "My"
    assert data_name(RandomDataModule(dim=8, num_samples=32), {"dim": 8, "num_samples": 32, "eval_batch_size": 7}) == (
        "Random-dim8-num_samples32")
    assert data_name(RandomDataModule(), {"dim": 1000}) == ""  # the article's data: no name
