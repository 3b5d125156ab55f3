"""The sweep's command line: its own options, the grid and outer axes, and ``SweepCLI`` (``MomentumCLI`` over
``GridModule``) that builds one unit's Trainer."""

from pathlib import Path
from typing import Any

import lightning as L
import torch
import yaml
from lightning.fabric.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities.model_helpers import is_overridden

from lit_momentum.arguments import SHORT_PREFIXES, aliased
from lit_momentum.cli import MomentumCLI
from lit_momentum.nets import build_net, check_output
from lit_momentum.sweep.axes import ADAM, help_lines, kind, shown
from lit_momentum.sweep.batched import BatchedNet
from lit_momentum.sweep.figures import METRICS
from lit_momentum.sweep.grid import GridModule
from lit_momentum.sweep.logger import HPARAMS_METRICS, VAL_METRICS, GridLogger
from lit_momentum.sweep.memory import available_bytes, point_bytes
from lit_momentum.sweep.plan import GRID_OPTIONS, check_values, split_config
from lit_momentum.sweep.point_optimizers import optimizer_path
from lit_momentum.sweep.points import AXES, check_options, make_grid
from lit_momentum.sweep.schedules import READ

OWN = {"--out": None, "--threshold": 0.69, "--metric": None, "--share": None}  # single values, with defaults
FLAGS = ("--merge", "--help", "-h")

HELP = """usage: python -m lit_momentum.sweep [GRID AXES] [OUTER AXES] [SWEEP OPTIONS] [train.py's options]

Trains a grid of runs as one batched model per Trainer; see docs/sweep.md and docs/cluster.md.

grid axes (one value or several each; the grid is their product, trained as one batched model):
{axes}
outer axes (one grid per combination of values):
  --data.OPTION V V [...]     any option of the data module, e.g. --data.batch_size 16 64 256
  --model.OPTION V V [...]    any other model option, e.g. --model.net.hidden [64] [100,100]
                              (in a config: a list where the option takes one value)

sweep options:
  --out DIR                   where everything goes (default: a new lightning_logs/sweep/version_<n>); several
                              processes share one DIR, and the same command continues the sweep in it
  --ckpt_path DIR/.../last.ckpt   continue a stopped sweep (any of its checkpoints)
  --bound X                   an epoch loss above X, or inf/nan, marks a point diverged (default 100)
  --threshold X               the loss for summary.csv's epoch_below_threshold (default 0.69)
  --metric NAME               what the figures show: {metrics} (default: best_val_acc with validation data)
  --share I/K                 start with the I-th of K shares (1 <= I <= K), then take any unit nobody has
                              finished or holds (default: from SLURM_ARRAY_TASK_ID, srun, torchrun, from 0)
  --merge                     build summary.csv, figures and TensorBoard's experiment from the finished units
  --trainer.strategy ddp      train replicas of one grid on several devices (data-parallel), not shares

Every other option is train.py's and means the same (python train.py --help lists them): --config, --data CLASS,
--model.net CLASS (any network: MLP, ConvNet1D, my_pkg.MyNet) and its --model.net.*, --optimizer CLASS (sgd, adam,
adamw batched; RMSprop, NAdam, my_pkg.Lion: each point its own, docs/optimizers.md) and its --optimizer.*,
--trainer.*, --max_epochs, --accelerator, --devices, ...
""".format(metrics=", ".join(METRICS), axes=help_lines())


def split_args(argv: list[str]) -> tuple[dict[str, Any], list[str], dict[str, list]]:
    """Take the sweep's own options and the outer axes out of ``argv``; rewrite ``--lr 1e-5 1e-4`` to
    ``--model.lr=[1e-5, 1e-4]``. Returns the own options, the rest for LightningCLI, and the outer axes."""
    own, rest, outer, i = dict(OWN), [], {}, 0
    own.update({flag: False for flag in FLAGS})
    while i < len(argv):
        name, eq, value = argv[i].partition("=")
        name = aliased(name) if name.startswith(SHORT_PREFIXES) else name
        values = [value] if eq else []
        i += 1
        if name in FLAGS:
            own[name] = True
            continue
        swept = name.startswith(("--data.", "--model."))
        many = name.removeprefix("--") in AXES or name in OWN or name == "--bound" or swept or name.startswith(
            ("--trainer.", "--checkpoint.", "--seed_everything"))
        if many:
            while not eq and i < len(argv) and not argv[i].startswith(("--", "-c")):  # (-c FILE: a config)
                values.append(argv[i])
                i += 1
            if not values:
                raise ValueError(f"{name} needs a value")
        key = name.removeprefix("--")
        if key == "dampening" and values == ["momentum"]:  # the article's formula, dampening = m, for every point
            rest.append("--model.dampening=momentum")
        elif key in AXES:
            rest.append(f"--model.{key}=[{', '.join(values)}]")
        elif name in OWN or name == "--bound":
            if len(values) > 1:
                raise ValueError(f"{name} takes one value, got {' '.join(values)}")
            if name == "--bound":
                rest.append(f"--model.bound={values[0]}")
            else:
                own[name] = values[0]
        elif many and len(values) > 1:  # an outer axis
            if not swept:
                raise ValueError(f"{name} {' '.join(values)}: only data and model options can be outer axes (this "
                                 f"one is the same for every grid of a sweep)")
            if key.removeprefix("model.") in GRID_OPTIONS:
                raise ValueError(f"{name}: give the grid axis as --{key.removeprefix('model.')} V V ...")
            outer[key] = check_values(key, [yaml.safe_load(v) for v in values], "command line")
        elif many:
            rest.append(f"{name}={values[0]}")
        else:
            rest.append(argv[i - 1])
    try:
        own["--threshold"] = float(own["--threshold"])
    except ValueError:
        raise ValueError(f"--threshold must be a number, got {own['--threshold']}") from None
    if own["--metric"] not in (None, *METRICS):
        raise ValueError(f"--metric must be one of {', '.join(METRICS)}; got {own['--metric']}")
    return own, rest, outer


def config_axes(rest: list[str], outer: dict[str, list]) -> tuple[list[str], dict[str, list]]:
    """The outer axes given as lists in ``--config`` files (the command line's win), and ``rest`` with those configs
    passed on without them (as YAML text, which ``--config`` takes as well as a path)."""
    out, axes = [], {}
    for i, arg in enumerate(rest):
        name, eq, value = arg.partition("=")
        path = value if eq else (rest[i + 1] if i + 1 < len(rest) else None)
        if name == "--config" and path and Path(path).is_file():
            found, text = split_config(Path(path).read_text(), path)
            if found:
                axes.update(found)
                out.append(f"--config={text}")
                if not eq:
                    rest[i + 1] = None  # the path, replaced
                continue
        if arg is not None:
            out.append(arg)
    return [a for a in out if a is not None], {**axes, **outer}


class ShareSLURMEnvironment(SLURMEnvironment):
    """SLURM for one share of a sweep: each task trains alone on one device, so Lightning's rules for the tasks of
    one DDP job (``--ntasks-per-node``, not ``-n``; as many tasks as devices) do not apply. Requeue on SIGUSR1 does."""

    @staticmethod
    def _validate_srun_variables() -> None:
        pass

    def validate_settings(self, num_devices: int, num_nodes: int) -> None:
        pass


class CheckedOnly(Exception):  # noqa: N818 (not an error: the check's normal end)
    """Raised once a unit's configuration and data are checked, before its model is built (``SweepCLI.check_only``)."""


class SweepCLI(MomentumCLI):
    """``MomentumCLI`` over ``GridModule``: the same options, plus the grid's checks, logger and checkpoint place.

    ``out`` is the sweep's directory (its TensorBoard runs), ``home`` the unit's (its checkpoints), ``outer`` the
    unit's outer values (None: the sweep's only unit, which writes the root's HParams experiment itself; else the
    merge does)."""

    model_class = GridModule
    trains_grid = True
    command = "python -m lit_momentum.sweep"

    def __init__(self, args: list[str], resume: Any, stage: str = "fit", out: Path | None = None,
                 home: Path | None = None, outer: dict[str, Any] | None = None, check_only: bool = False,
                 share: bool = False) -> None:
        self.out, self.home, self.outer, self.check_only, self.share = out, home or out, outer, check_only, share
        super().__init__(args, resume, stage)

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        if self.share and SLURMEnvironment.detect():  # one task of several under srun, training alone
            kwargs["plugins"] = [ShareSLURMEnvironment()]
        return super().instantiate_trainer(**kwargs)

    def add_arguments_to_parser(self, parser: Any) -> None:
        super().add_arguments_to_parser(parser)
        if not self.resume:
            parser.set_defaults({"model.seeds": None})  # None: [--seed_everything]

    def before_instantiate_classes(self) -> None:
        cfg = self.config
        if cfg.model.seeds is None:
            cfg.model.seeds = [cfg.seed_everything]
        super().before_instantiate_classes()
        self.points = make_grid(cfg.model.prefix, cfg.model.only, cfg.model.optimizer, cfg.model.lr_scheduler,
                                **{a: cfg.model[a] for a in AXES})
        check_options(cfg.model.optimizer, cfg.model.momentum_impl, cfg.model.bound)
        if str(cfg.trainer.precision) in ("16", "16-mixed"):
            raise ValueError("--trainer.precision 16-mixed: its one gradient scaler would skip every point's step when "
                             "one point overflows; use 32-true or bf16-mixed")
        if cfg.trainer.gradient_clip_val is not None:
            raise ValueError("--trainer.gradient_clip_val: clipping would take one norm over all the grid's points; "
                             "not supported by the sweep")
        if self.home is not None:
            cfg.checkpoint.dirpath = str(self.home)
            cfg.trainer.default_root_dir = str(self.home)  # Lightning's SLURM requeue checkpoints go there too

    def point_settings(self) -> list[dict[str, Any]]:
        """Each distinct setting of the grid's points, for the check of the scheduler they all start."""
        return [dict(k) for k in dict.fromkeys(tuple((a, getattr(p, a)) for a in READ) for p in self.points)]

    def say_overridden(self) -> None:
        """(Said once by the sweep, not once per unit.)"""

    def resumed_schedule(self) -> dict[str, Any] | None:
        state = super().resumed_schedule()
        return state["schedulers"][0] if state else None  # (the first point's: every point's has its length)

    def check_fits(self, dm: L.LightningDataModule) -> None:
        """Refuse a grid that would not fit in memory, before it is allocated."""
        cfg = self.config
        batch = getattr(dm, "batch_size", 256)
        batches = (batch, getattr(dm, "eval_batch_size", batch))
        states = 2 if kind(cfg.model.optimizer) != "sgd" else int(any(p.momentum for p in self.points))
        per_point = point_bytes(cfg.model.net, dm.dim, dm.num_classes, batches, states)
        need = len(self.points) * per_point
        free = available_bytes(str(cfg.trainer.accelerator), cfg.trainer.devices)
        if need > 0.8 * free:
            fits = int(0.8 * free // per_point)
            raise ValueError(f"a grid of {len(self.points)} points needs about {need / 2**30:.1f} GiB (weights, "
                             f"gradients, velocities, activations) and {free / 2**30:.1f} GiB is free: at most {fits} "
                             f"points fit in one process")
        if self.check_only:  # the network, as the grid will build and batch it: one line if it cannot
            with torch.random.fork_rng(devices=[]):
                net = build_net(cfg.model.net, dm.dim, dm.num_classes)
            check_output(net, dm.dim, dm.num_classes)
            self.path = f"{BatchedNet([net, net], dm.dim).path}; {optimizer_path(cfg.model.optimizer)}"  # said once
            raise CheckedOnly(self)

    def has_validation(self) -> bool:
        return is_overridden("val_dataloader", self.datamodule, L.LightningDataModule)

    def resumes_in_place(self) -> bool:
        return self.resume is not None

    def make_logger(self) -> GridLogger:
        pts = self.model.points
        outer = {k: v if isinstance(v, int | float | bool | str) else str(v) for k, v in (self.outer or {}).items()}
        names = shown(adam=kind(self.config.model.optimizer) in ADAM)
        settings = {p.name: {**{a: getattr(p, a) for a in names}, **outer} for p in pts}
        return GridLogger(self.out, settings, seed_bands=len({p.seed for p in pts}) > 1,
                          metrics=HPARAMS_METRICS + (VAL_METRICS if self.has_validation() else ()),
                          purge_step=self.resume.global_step if self.resume else None,
                          experiment=Path(self.home) == Path(self.out), home=self.home)  # one unit: the sweep's
