"""Each grid point's schedule: the scheduler its ``train.py`` run has (``lit_momentum.schedules``), built on a
stand-in optimizer with the point's own settings and stepped where Lightning steps the run's; after each step the
stand-ins' learning rates and momenta (Adam: beta1) become the points' settings. Points the scheduler cannot tell
apart (the seeds of one setting) share one scheduler.

    python -m lit_momentum.sweep --lr 0.01 0.1 --momentum 0 0.9 --lr_scheduler CosineAnnealingLR \\
        --lr_scheduler.T_max 20 --max_epochs 20          # every point's lr follows its own cosine
"""

from collections.abc import Callable
from typing import Any

from torch.optim import Optimizer

from lit_momentum.schedules import Schedule, build_scheduler, group_values, stand_in

READ = ("lr", "momentum", "dampening", "nesterov", "weight_decay", "beta2", "eps")  # what a stand-in is built from


class PointSchedules:
    """N points' schedules, one object for Lightning (which steps it through ``GridModule.lr_scheduler_step`` at the
    interval a single run's scheduler steps, and saves its ``state_dict`` in checkpoints)."""

    def __init__(self, schedule: Schedule, optimizer: str, points: list[Any], length: int,
                 alive: Callable[[], list[bool]]) -> None:
        keys = [tuple((k, getattr(p, k)) for k in READ) for p in points]
        unique = list(dict.fromkeys(keys))
        self.index = [unique.index(k) for k in keys]  # point -> its scheduler
        self.stand_ins = [stand_in(optimizer, **dict(k)) for k in unique]
        self.schedulers = [build_scheduler(schedule, o, length) for o in self.stand_ins]
        self.adam, self.alive = optimizer != "sgd", alive
        self.optimizer: Optimizer | None = None  # the grid's (Lightning checks a scheduler's optimizer is returned)
        self.read()

    def read(self) -> None:
        """Each point's (lr, momentum) the next step uses: ``self.lr``, ``self.momentum``, (N,) lists."""
        values = [group_values(o) for o in self.stand_ins]
        self.lr = [values[i][0] for i in self.index]
        self.momentum = [values[i][1] for i in self.index]

    def step(self) -> None:
        for scheduler in self.schedulers:
            scheduler.step()
        self.apply()

    def apply(self) -> None:
        """The stand-ins' values into the grid optimizer's per-point settings (0 for a frozen point)."""
        self.read()
        alive = self.alive()
        for name, values in (("lr", self.lr), ("beta1" if self.adam else "momentum", self.momentum)):
            self.optimizer.set_points(name, [v if on else 0.0 for v, on in zip(values, alive)])

    def state_dict(self) -> dict[str, Any]:
        return {"stand_ins": [o.state_dict() for o in self.stand_ins],
                "schedulers": [s.state_dict() for s in self.schedulers]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for o, s, o_state, s_state in zip(self.stand_ins, self.schedulers, state["stand_ins"], state["schedulers"]):
            o.load_state_dict(o_state)
            s.load_state_dict(s_state)
        self.apply()
