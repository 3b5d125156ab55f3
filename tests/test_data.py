"""The data module: the article's data, and a batch order fixed by (seed, epoch) alone."""

import pytest
import torch

from lit_momentum.data import EpochBatches, RandomDataModule


def epoch_indices(sampler: EpochBatches, epoch: int) -> list[torch.Tensor]:
    sampler.set_epoch(epoch)
    return list(sampler)


def test_labels_half_zero_half_one_and_same_data_per_seed() -> None:
    dm = RandomDataModule(dim=10, num_samples=100, seed=3)
    assert dm.x.shape == (100, 10) and dm.x.dtype == torch.float32
    assert dm.y[:50].eq(0).all() and dm.y[50:].eq(1).all()
    assert torch.equal(dm.x, RandomDataModule(dim=10, num_samples=100, seed=3).x)
    assert not torch.equal(dm.x, RandomDataModule(dim=10, num_samples=100, seed=4).x)


def test_batches_cover_every_sample_once_and_reshuffle_per_epoch() -> None:
    dm = RandomDataModule(dim=8, num_samples=200, batch_size=64)
    loader = dm.train_dataloader()
    sampler = loader.sampler
    e0, e1 = epoch_indices(sampler, 0), epoch_indices(sampler, 1)
    assert [len(b) for b in e0] == [64, 64, 64, 8] and len(loader) == 4
    assert torch.equal(torch.cat(e0).sort().values, torch.arange(200))
    assert not torch.equal(torch.cat(e0), torch.cat(e1))
    x, y = next(iter(loader))  # whole batches cut from the tensors
    assert x.shape == (64, 8) and y.shape == (64,)


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


@pytest.mark.parametrize("kwargs, option", [
    (dict(dim=1), "data.dim"), (dict(num_samples=101), "data.num_samples"), (dict(batch_size=0), "data.batch_size"),
])
def test_bad_values_name_the_option(kwargs: dict, option: str) -> None:
    with pytest.raises(ValueError, match=option):
        RandomDataModule(**kwargs)
