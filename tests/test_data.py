"""The data modules: the article's data, MNIST-1D as its package makes it, a batch order fixed by (seed, epoch) alone,
and the contract any data module is checked against.

Bugs these exist to catch: a batch order that depends on the global RNG, the world size or the resume point; a
held-out set that changes the training data; MNIST-1D that is not the package's; a contract violation that goes
unnoticed until training.
"""

import random

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.utilities.model_helpers import is_overridden

from lit_momentum.data import EpochBatches, MNIST1DDataModule, RandomDataModule, check_contract


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
