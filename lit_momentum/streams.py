"""Random numbers as functions of ``(seed, epoch)``: the data's stream and each run's own, kept apart.

A run draws random numbers in two places: the data (a ``DataLoader(shuffle=True)`` draws its order from PyTorch's
global generator, a transform its noise) and the network (dropout masks, noise layers). Left to one global generator,
both depend on everything drawn before them: the order a user's loader gives then depends on how many networks were
built, and a continued run draws other numbers than an uninterrupted one. Here, at every training epoch's start:

    data stream     the global generators (torch, numpy, random) and a loader's own generator: from (data seed, epoch)
    run k's stream  the generator its network draws from: from (seed_k, epoch), swapped in around each forward

The data seed is the data module's ``seed`` option where it has one (the package's modules do), else 0: it is the
same for a grid point and its ``train.py`` run, whatever their ``--seed_everything``, so every point of a grid reads
the one shared batch that each of their runs reads. ``seed_k`` is the run's ``--seed_everything`` (a grid point's
seed). A continued run rebuilds both from the epoch: nothing to save, bit for bit the uninterrupted run.

Before training, the data module draws from the data's stream too (``BUILD``): its ``__init__`` (``self.x =
torch.randn(...)``, the usual quick experiment) from ``(data seed, 0)`` and each ``setup`` call from ``(data seed,
1)``, whatever the stage (a module that draws its splits in ``setup`` gets the same splits to fit and to test). The
network is then built from the run's seed alone, whatever the data drew (``seed_globals``).
"""

import functools
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader

DATA, RUN, BUILD = 0, 1, 2  # stream tags: the streams of one seed never share a state


def epoch_seed(stream: int, seed: int, epoch: int) -> int:
    """A 64-bit seed for ``stream`` of ``seed`` at ``epoch``, well mixed (``numpy.random.SeedSequence``)."""
    return int(np.random.SeedSequence([stream, seed, epoch]).generate_state(1, dtype=np.uint64)[0])


def data_seed(datamodule: Any) -> int:
    """The data module's ``seed`` option where it has one (an int), else 0."""
    return seed_or_zero(getattr(datamodule, "seed", 0))


def seed_or_zero(seed: Any) -> int:
    return seed if isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 else 0


def seed_globals(seed: int) -> None:
    """PyTorch's, Python's and NumPy's global generators from ``seed``, as ``seed_everything`` seeds them."""
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)


def drawing_from_setup_stream(setup: Callable[..., Any], seed: int) -> Callable[..., Any]:
    """A data module's ``setup`` that draws from the data's stream at ``(seed, 1)`` every time it is called, and
    leaves the global generators as they were."""
    @functools.wraps(setup)
    def seeded(*args: Any, **kwargs: Any) -> Any:
        states = random.getstate(), np.random.get_state()
        try:
            with torch.random.fork_rng(devices=[]):
                seed_globals(epoch_seed(BUILD, seed, 1))
                return setup(*args, **kwargs)
        finally:
            random.setstate(states[0])
            np.random.set_state(states[1])
    seeded.draws_from_data_stream = True
    return seeded


def loader_generators(loaders: Any) -> list[torch.Generator]:
    """The generators a loader shuffles with that are its own (``DataLoader(generator=g)``, a sampler's)."""
    found: list[torch.Generator] = []
    for dl in loaders if isinstance(loaders, list | tuple) else [loaders]:
        if not isinstance(dl, DataLoader):
            continue
        samplers = [dl.sampler, getattr(dl.batch_sampler, "sampler", None), dl.batch_sampler]
        for g in [dl.generator, *(getattr(s, "generator", None) for s in samplers)]:
            if isinstance(g, torch.Generator) and all(g is not f for f in found):
                found.append(g)
    return found


class RandomStreams:
    """The data stream and one stream per run (``seeds``: one for ``train.py``, one per grid point).

    ``start_epoch`` seeds them all; ``run(k)`` is a context in which PyTorch's generators are run k's (its state is
    kept on leaving, the data stream's restored). The states live on the host: swapping them is a copy of a few
    kilobytes, and on a GPU (the CUDA generator's seed and offset) no device sync. A run's state is made when its
    first forward of the epoch needs it: a grid whose network draws nothing pays nothing per point. Generators are
    seeded directly (``torch.manual_seed`` would queue a seed for every device type this process never uses and
    format the Python stack for each: about a millisecond a call).
    """

    def __init__(self, seeds: list[int], device: torch.device | str = "cpu") -> None:
        self.seeds, self.device = list(seeds), torch.device(device)
        self.first_seeds: dict[int, int] = {}  # a loader generator's own seed, by id, as first seen
        self.epoch = 0
        self.states: list[tuple[Tensor, ...] | None] = [None] * len(self.seeds)  # made on first use in the epoch

    def seeded(self, stream: int, seed: int, epoch: int) -> tuple[Tensor, ...]:
        """The generator states of ``stream`` at ``epoch``: those of generators seeded with its seed, as
        ``torch.manual_seed`` would seed the global ones (these are left as they were)."""
        value = epoch_seed(stream, seed, epoch)
        cpu = torch.Generator().manual_seed(value).get_state()
        if self.device.type == "cuda":
            return cpu, torch.Generator(device=self.device).manual_seed(value).get_state()
        return (cpu,)

    def seed_devices(self, value: int) -> None:
        """The global generators of this process's devices (CPU, and the CUDA device it trains on) from ``value``."""
        torch.default_generator.manual_seed(value)
        if self.device.type == "cuda":
            torch.cuda.default_generators[self.device.index or 0].manual_seed(value)
        elif self.device.type != "cpu":  # (another accelerator: PyTorch's own, every device)
            torch.manual_seed(value)

    def get(self) -> tuple[Tensor, ...]:
        cpu = torch.get_rng_state()
        return (cpu, torch.cuda.get_rng_state(self.device)) if self.device.type == "cuda" else (cpu,)

    def set(self, states: tuple[Tensor, ...]) -> None:
        torch.set_rng_state(states[0])
        if self.device.type == "cuda":
            torch.cuda.set_rng_state(states[1], self.device)

    def start_epoch(self, epoch: int, seed: int, loaders: Any = None) -> None:
        """Every run's stream from its ``(seed_k, epoch)``; the global generators and the loaders' own from the data
        stream's ``(seed, epoch)``: called before the epoch's loader is iterated."""
        self.epoch, self.states = epoch, [None] * len(self.seeds)
        data = epoch_seed(DATA, seed, epoch)
        self.seed_devices(data)
        random.seed(data)
        np.random.seed(data % 2**32)
        for g in loader_generators(loaders):
            first = self.first_seeds.setdefault(id(g), g.initial_seed())
            g.manual_seed(epoch_seed(DATA, first, epoch))
        restart_persistent_workers(loaders)

    @contextmanager
    def run(self, k: int) -> Iterator[None]:
        """PyTorch's generators are run k's inside (its draws continue where they stopped)."""
        data = self.get()
        state = self.states[k]
        self.set(state if state is not None else self.seeded(RUN, self.seeds[k], self.epoch))
        try:
            yield
        finally:
            self.states[k] = self.get()
            self.set(data)


def restart_persistent_workers(loaders: Any) -> None:
    """End a loader's persistent workers, so that the epoch's iterator starts new ones, seeded from this epoch's data
    stream (as workers that do not persist are): a worker kept from epoch 0 would go on drawing from its epoch-0
    seed, and a run continued at epoch k would not (it pays a worker start per epoch, as a loader without them)."""
    for dl in loaders if isinstance(loaders, list | tuple) else [loaders]:
        iterator = getattr(dl, "_iterator", None) if isinstance(dl, DataLoader) else None
        if iterator is not None and getattr(dl, "persistent_workers", False):
            iterator._shutdown_workers()  # (PyTorch's own call when a loader is deleted)
            dl._iterator = None
