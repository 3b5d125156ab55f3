"""The command line: LightningCLI over ``MomentumMLP`` and ``RandomDataModule``; ``python train.py`` trains.

    python train.py                                           # the article's experiment (2000 epochs)
    python train.py --config configs/manual.yaml --config configs/debug.yaml
    python train.py --accelerator gpu --max_epochs 300        # short aliases of --trainer.*
    python train.py --ckpt_path lightning_logs/<variant>/version_0/checkpoints/last.ckpt   # resume
    python train.py --print_config
"""

import logging
import shlex
import shutil
import sys
import warnings
from argparse import ArgumentError
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.accelerators import CPUAccelerator, CUDAAccelerator, MPSAccelerator
from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lit_momentum.data import RandomDataModule
from lit_momentum.model import MomentumMLP, NonFiniteLossError
from lit_momentum.runs import Checkpoint, LastCheckpoint, RunLogger, read_checkpoint
from lit_momentum.stopping import EXIT_CODES, StopOnSignal

ALIASES = {f"--{k}": f"--trainer.{k}" for k in ("accelerator", "devices", "precision", "max_epochs")}
TRAINER_DEFAULTS = {
    "max_epochs": 2000,
    "log_every_n_steps": 1,  # every step is a point on train/loss_step
    "use_distributed_sampler": False,  # the data module splits each global batch across ranks itself
}
ACCELERATORS = {"cpu": CPUAccelerator, "gpu": CUDAAccelerator, "mps": MPSAccelerator}
PROGRESS_REFRESH_STEPS = 50  # and at the end of every epoch
CHECKPOINT_DEFAULTS = {"save_last": True, "save_top_k": 0, "every_n_epochs": 100}


class DropCloudTip(logging.Filter):
    """Drops Lightning's advertisement for its cloud logger (printed at every run), nothing else."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in str(record.msg)


def quiet() -> None:
    """Silence at the entry points what a user can do nothing about, and only that: the cloud-logger tip, and a
    deprecation warning Lightning 2.6 raises from inside itself with torch >= 2.10 (LeafSpec). A user's own warnings,
    and Lightning's other messages, still show."""
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)")
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropCloudTip) for f in logger.filters):
            logger.addFilter(DropCloudTip())


def expand_aliases(argv: list[str]) -> list[str]:
    """Rewrite ``--accelerator gpu`` / ``--accelerator=gpu`` to ``--trainer.accelerator``, keeping the order."""
    out = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        out.append(ALIASES[name] + eq + value if name in ALIASES else arg)
    return out


def find_option(argv: list[str], name: str) -> str | None:
    """The value of the last ``name`` (``--ckpt_path``, say) on the command line, if any."""
    value = None
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(name + "="):
            value = arg.partition("=")[2]
    return value


class MomentumCLI(LightningCLI):
    """LightningCLI plus ``--ckpt_path``, a ``--checkpoint.*`` callback and a run directory named for the variant."""

    command = "python train.py"  # how the user runs it, for the line that says how to continue a stopped run
    model_class: type[L.LightningModule] = MomentumMLP
    trains_grid = False  # the sweep's subclass trains a grid, and resumes only a grid's checkpoint

    def __init__(self, args: list[str], resume: Checkpoint | None) -> None:
        if resume and resume.grid != self.trains_grid:
            owner = "python -m lit_momentum.sweep" if resume.grid else "python train.py"
            raise ValueError(f"--ckpt_path {resume.path}: this checkpoint is {owner}'s; continue it with {owner}")
        self.resume = resume
        # args are always given (aliases rewritten): Lightning's warning about args beside sys.argv does not apply
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        config_name = f"config_resumed_step{resume.global_step}.yaml" if resume else "config.yaml"
        super().__init__(
            self.model_class,
            RandomDataModule,
            args=args,
            run=False,
            seed_everything_default=0,
            auto_configure_optimizers=False,
            trainer_defaults=TRAINER_DEFAULTS,
            save_config_kwargs={"config_filename": config_name, "overwrite": resume is not None},
            parser_kwargs={"exit_on_error": False},  # main() turns a parse error into one line
        )

    def add_arguments_to_parser(self, parser: Any) -> None:
        parser.link_arguments("data.dim", "model.dim")
        parser.add_lightning_class_args(LastCheckpoint, "checkpoint")
        parser.set_defaults({f"checkpoint.{k}": v for k, v in CHECKPOINT_DEFAULTS.items()})
        parser.add_argument("--ckpt_path", type=str | None, default=None,
                            help="Resume from this checkpoint, with the settings it was trained with.")
        if self.resume:  # a resumed run keeps its settings unless told otherwise (and then refuses, below)
            parser.set_defaults({f"model.{k}": v for k, v in self.resume.model_hparams.items() if k != "dim"})
            parser.set_defaults({f"data.{k}": v for k, v in self.resume.data_hparams.items()})

    def before_instantiate_classes(self) -> None:
        if not self.resume:
            return
        for group, saved in (("data", self.resume.data_hparams), ("model", self.resume.model_hparams)):
            for key, value in saved.items():
                now = self.config[group].get(key)
                if now != value:
                    raise ValueError(f"{group}.{key} is {now} here but {value} in the checkpoint "
                                     f"{self.resume.path}: a resumed run keeps its settings; drop the option")

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        # the model summary's FLOPs column counts a forward pass on this: one batch of the data
        self.model.example_input_array = torch.zeros(self.datamodule.hparams.batch_size, self.datamodule.hparams.dim)

    def resumes_in_place(self) -> bool:
        """Whether the resumed run writes into its checkpoint's directory (and so overwrites the file)."""
        return bool(self.resume and self.resume.run_dir)

    def make_logger(self) -> Logger:
        """TensorBoard, one directory per run (when the user chose no logger)."""
        run = self.resume.run_dir if self.resume else None
        root = Path(self.config.trainer.default_root_dir or ".") / "lightning_logs"
        return RunLogger(
            save_dir=run.parent.parent if run else root,
            name=run.parent.name if run else self.model.run_name,
            version=run.name if run else None,
            default_hp_metric=False,
            purge_step=self.resume.global_step if run else None,  # drop points logged after the checkpoint
        )

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        if self.config.trainer.logger in (None, True):  # not chosen by the user
            kwargs["logger"] = self.make_logger()
        callbacks = list(self.config_init.trainer.get("callbacks") or [])
        if self.config.trainer.enable_progress_bar is not False and not any(
            isinstance(c, ProgressBar) for c in callbacks
        ):  # redrawing the bar after every step costs about a third of a millisecond
            callbacks.append(TQDMProgressBar(refresh_rate=PROGRESS_REFRESH_STEPS))
        self.stopper = StopOnSignal()  # Ctrl-C and SIGTERM: stop after this epoch, with its checkpoint
        kwargs["callbacks"] = [*callbacks, self.stopper]
        try:
            return super().instantiate_trainer(**kwargs)
        except MisconfigurationException as err:  # e.g. --accelerator gpu on a machine without one
            trainer = self.config.trainer
            available = ", ".join(n for n, acc in ACCELERATORS.items() if acc.is_available())
            raise ValueError(f"--trainer.accelerator {trainer.accelerator} --trainer.devices {trainer.devices}: "
                             f"{err} (accelerators available here: {available}, auto)") from None


def build(cli_class: type[MomentumCLI], argv: list[str]) -> tuple[MomentumCLI, Checkpoint | None]:
    """Parse and build everything; bad input ends in one line on stderr and exit code 1, before anything is written."""
    try:
        ckpt_path = find_option(argv, "--ckpt_path")
        resume = read_checkpoint(ckpt_path) if ckpt_path else None
        cli = cli_class(argv, resume)
        if cli.config.ckpt_path != ckpt_path:  # set in a config file: its settings would go unchecked
            raise ValueError("ckpt_path: give it on the command line (--ckpt_path PATH), not in a config file")
    except (ValueError, ArgumentError) as err:  # bad input: one line, before anything is written
        sys.exit("error: " + " ".join(str(err).split()))
    return cli, resume


def resume_command(command: str, argv: list[str], ckpt: str) -> str:
    """The user's command again, with ``--ckpt_path ckpt`` in place of any it had."""
    args, skip = [], False
    for arg in argv:
        if skip or arg.startswith("--ckpt_path="):
            skip = False
        elif arg == "--ckpt_path":
            skip = True
        else:
            args.append(arg)
    return " ".join([command, shlex.join([*args, "--ckpt_path", ckpt])])


def last_checkpoint(trainer: L.Trainer) -> str:
    """The path of the run's ``last.ckpt`` on disk, or "" when none was written."""
    return trainer.checkpoint_callback.last_model_path if trainer.checkpoint_callback else ""


def fit(cli: MomentumCLI, resume: Checkpoint | None, argv: list[str]) -> None:
    """Train (continuing ``resume``, whose file is kept as ``resumed-from-...``). A runaway loss ends in one line;
    so does a stop by Ctrl-C or SIGTERM, with the command that continues the run, and exit code 130 or 143."""
    cli.stopper.install()  # from here on a signal stops the run at the next epoch's end, not mid-step
    if resume and cli.resumes_in_place() and cli.trainer.is_global_zero:  # the run will overwrite it: keep a copy
        kept = f"resumed-from-epoch{resume.epoch}-step{resume.global_step}.ckpt"
        shutil.copy2(resume.path, resume.path.with_name(kept))
    try:  # weights_only: nothing stored in a checkpoint is ever executed (read_checkpoint checked it already)
        cli.trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=cli.config.ckpt_path, weights_only=True)
    except NonFiniteLossError as err:
        last = last_checkpoint(cli.trainer)
        sys.exit(f"error: {err}" + (f"; last good checkpoint: {last}" if last else ""))
    if cli.stopper.stopped_early(cli.trainer):
        last = last_checkpoint(cli.trainer)
        if cli.trainer.is_global_zero:
            print(cli.stopper.message(resume_command(cli.command, argv, last) if last else "(no checkpoint)"),
                  file=sys.stderr)
        sys.exit(EXIT_CODES[cli.stopper.signum])


def main(args: list[str] | None = None) -> None:
    """``python train.py ARGS``: build, fit, and say where everything is."""
    quiet()
    argv = sys.argv[1:] if args is None else args
    cli, resume = build(MomentumCLI, expand_aliases(argv))
    fit(cli, resume, argv)
    report(cli)


@rank_zero_only
def report(cli: MomentumCLI) -> None:
    """Tell the user where the run's logs and checkpoint are, and how to look at them."""
    trainer = cli.trainer
    if trainer.logger is None:
        return
    ckpt = trainer.checkpoint_callback.last_model_path if trainer.checkpoint_callback else ""
    print(f"\nlogs:       {trainer.logger.log_dir}\ncheckpoint: {ckpt or 'none'}\n"
          f"view with:  tensorboard --logdir {trainer.logger.save_dir}")
