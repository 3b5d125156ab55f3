"""Each grid point's schedule: the scheduler its ``train.py`` run has (``lit_momentum.schedules``), built on a
stand-in optimizer with the point's own settings and stepped where Lightning steps the run's; after each step the
stand-ins' learning rates and momenta (Adam: beta1) become the points' settings. Points the scheduler cannot tell
apart (the seeds of one setting) share one param group; with PyTorch's schedulers (and this project's) one stand-in
holds a group per setting and one scheduler steps them all (32 schedulers stepped apart cost 75 us a step).

    python -m lit_momentum.sweep --lr 0.01 0.1 --momentum 0 0.9 --lr_scheduler CosineAnnealingLR \\
        --lr_scheduler.T_max 20 --max_epochs 20          # every point's lr follows its own cosine
"""

from collections.abc import Callable
from typing import Any

from torch.optim import Optimizer

from lit_momentum.schedules import (
    STAND_IN_SETTINGS,
    Schedule,
    build_scheduler,
    group_values,
    shares_groups,
    stand_in,
    stand_in_groups,
)
from lit_momentum.sweep.axes import ADAM, kind

READ = STAND_IN_SETTINGS  # what a stand-in is built from


class PointSchedules:
    """N points' schedules, one object for Lightning (which steps it through ``GridModule.lr_scheduler_step`` at the
    interval a single run's scheduler steps, and saves its ``state_dict`` in checkpoints)."""

    def __init__(self, schedule: Schedule, optimizer: Any, points: list[Any], length: int,
                 alive: Callable[[], list[bool]]) -> None:
        keys = [tuple((k, getattr(p, k)) for k in READ) for p in points]
        unique = list(dict.fromkeys(keys))
        self.index = [unique.index(k) for k in keys]  # point -> its setting's group
        self.settings = [dict(k) for k in unique]
        self.schedule, self.optimizer_name, self.length = schedule, optimizer, length
        self.build(together=shares_groups(schedule))
        self.adam, self.alive = kind(optimizer) in ADAM, alive  # (GridAdam calls momentum beta1)
        self.optimizer: Optimizer | None = None  # the grid's (Lightning checks a scheduler's optimizer is returned)
        self.read()

    def build(self, together: bool) -> None:
        """One stand-in with a param group per setting and one scheduler stepping them all (PyTorch's schedulers and
        this project's), or a stand-in and a scheduler per setting (a user's own class, which may read one group;
        a checkpoint written before December 2026). Either way each group takes the values of its own run's."""
        if together:
            self.stand_ins = [stand_in_groups(self.optimizer_name, self.settings)]
        else:
            self.stand_ins = [stand_in(self.optimizer_name, **s) for s in self.settings]
        self.schedulers = [build_scheduler(self.schedule, o, self.length) for o in self.stand_ins]

    def read(self) -> None:
        """Each point's (lr, momentum) the next step uses: ``self.lr``, ``self.momentum``, (N,) lists."""
        values = [group_values(o, k) for o in self.stand_ins for k in range(len(o.param_groups))]  # (settings,)
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
        if len(state["stand_ins"]) != len(self.stand_ins):  # saved in the other layout: continued in it
            self.build(together=len(state["stand_ins"]) == 1)
        for o, s, o_state, s_state in zip(self.stand_ins, self.schedulers, state["stand_ins"], state["schedulers"]):
            o.load_state_dict(o_state)
            s.load_state_dict(s_state)
        self.apply()
