"""CPU threads per process, where processes share a machine: a sweep's shares; train.py, compare and the sweep
under SLURM.

PyTorch starts one OpenMP thread per core in every process. Two processes doing so on one machine put two busy
threads on each core, and a small model's steps, each a few short parallel regions, then wait on threads that are
not running: a 15-epoch MNIST-1D sweep in two shares took 141 s instead of 13 s here (docs/performance.md). So each
process takes its part of the cores, in this order:

1. ``OMP_NUM_THREADS`` when set, by the user or by torchrun (1 per process unless told): PyTorch follows it already;
2. under SLURM, the cores the task was given (``SLURM_CPUS_PER_TASK``, else its part of the job's cores on the
   node): SLURM allocates cores but, without a task plugin that binds, does not keep a task on them;
3. the cores this process may run on, divided among the processes started on this machine: ``--share I/K`` by
   hand is K processes here (on several machines, set ``OMP_NUM_THREADS``). Lightning's own rule for the processes
   it launches (``--devices 2`` on CPUs) is the same, and is what this calls.

Outside SLURM a single process is left alone (PyTorch's default). The number of threads can change results by
rounding: the MLPs' sweeps wrote the same ``summary.csv`` with 1 and 2 threads, but a convolution splits its sums
by threads, and a CNN at its edge of stability then ends elsewhere (docs/schedules.md, (a)); each unit's
``result.json`` records the threads, so that like is compared with like.
"""

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from lightning.fabric.utilities.distributed import _set_num_threads_if_needed


@contextmanager
def shared_machine(processes_here: int) -> Iterator[int]:
    """Within it, this process uses its part of the cores for ``processes_here`` processes sharing the machine
    (yields the number of threads); the previous setting comes back after it (for a caller in the same process)."""
    before, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    if env is None:
        cpus = slurm_cpus(os.environ)
        if cpus:
            os.environ["OMP_NUM_THREADS"] = str(cpus)
            torch.set_num_threads(cpus)
        elif processes_here > 1:
            _set_num_threads_if_needed(processes_here)  # Lightning's: OMP_NUM_THREADS and torch, cores // processes
    try:
        yield torch.get_num_threads()
    finally:
        if env is None:
            os.environ.pop("OMP_NUM_THREADS", None)
            torch.set_num_threads(before)


def slurm_cpus(env: Mapping[str, str]) -> int | None:
    """The cores SLURM gave this task: ``SLURM_CPUS_PER_TASK`` (``-c``), else the job's cores on this node shared by
    its tasks on this node (``SLURM_CPUS_ON_NODE`` / ``SLURM_STEP_TASKS_PER_NODE``, e.g. ``2(x3),1``); None outside
    SLURM."""
    if env.get("SLURM_CPUS_PER_TASK", "").isdigit():
        return max(1, int(env["SLURM_CPUS_PER_TASK"]))
    if not env.get("SLURM_CPUS_ON_NODE", "").isdigit():
        return None
    per_node = []  # tasks on each node of the step (or job): "2(x3),1" -> [2, 2, 2, 1]
    for part in (env.get("SLURM_STEP_TASKS_PER_NODE") or env.get("SLURM_TASKS_PER_NODE") or "1").split(","):
        count, _, times = part.partition("(x")
        per_node += [int(count)] * int(times.rstrip(")") or 1)
    node = int(env.get("SLURM_NODEID", 0))
    tasks = per_node[node] if node < len(per_node) else 1
    return max(1, int(env["SLURM_CPUS_ON_NODE"]) // tasks)
