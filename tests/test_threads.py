"""Threads per process where processes share a machine (``lit_momentum/threads.py``); the sweep's shares and SLURM
tasks use it for real in tests/test_shares.py.

Bugs these exist to catch: a user's or torchrun's ``OMP_NUM_THREADS`` overridden; SLURM's cores ignored or misread
(``2(x3),1``); a caller in the same process left with fewer threads after it.
"""

import os

import pytest
import torch

from lit_momentum.threads import shared_machine, slurm_cpus


@pytest.mark.parametrize("env, cpus", [
    ({}, None),
    ({"SLURM_CPUS_PER_TASK": "3", "SLURM_CPUS_ON_NODE": "8"}, 3),
    ({"SLURM_CPUS_ON_NODE": "1", "SLURM_TASKS_PER_NODE": "1"}, 1),  # an array task without -c, as here
    ({"SLURM_CPUS_ON_NODE": "8", "SLURM_STEP_TASKS_PER_NODE": "2(x3),1", "SLURM_NODEID": "1"}, 4),
    ({"SLURM_CPUS_ON_NODE": "8", "SLURM_STEP_TASKS_PER_NODE": "2(x3),1", "SLURM_NODEID": "3"}, 8),
    ({"SLURM_CPUS_ON_NODE": "2", "SLURM_STEP_TASKS_PER_NODE": "4"}, 1),  # more tasks than cores: one each
])
def test_slurm_gives_each_task_its_cores(env: dict[str, str], cpus: int | None) -> None:
    assert slurm_cpus(env) == cpus


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("SLURM_") or k == "OMP_NUM_THREADS"]:
        monkeypatch.delenv(key)


def test_processes_sharing_a_machine_split_its_cores_and_the_caller_gets_its_threads_back(clean_env: None) -> None:
    before = torch.get_num_threads()
    cores = len(os.sched_getaffinity(0))
    with shared_machine(2) as threads:
        assert threads == torch.get_num_threads() == max(1, cores // 2)
        assert os.environ["OMP_NUM_THREADS"] == str(threads)  # for processes it starts (Lightning's launchers)
    assert torch.get_num_threads() == before and "OMP_NUM_THREADS" not in os.environ
    with shared_machine(1) as threads:  # a single process outside SLURM: PyTorch's default
        assert threads == before


def test_omp_num_threads_wins_and_slurm_comes_next(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    before = torch.get_num_threads()
    monkeypatch.setenv("OMP_NUM_THREADS", str(before))  # the user's (or torchrun's) choice: kept
    with shared_machine(8) as threads:
        assert threads == before
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "1")
    with shared_machine(1) as threads:  # train.py in a SLURM task given one core
        assert threads == 1
    assert torch.get_num_threads() == before
