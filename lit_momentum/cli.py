"""The command line: LightningCLI over ``MomentumModule``, any network and any data module (``lit_momentum.command``
builds it and trains or tests).

    python train.py                                           # the article's experiment (2000 epochs)
    python train.py --config configs/manual.yaml --config configs/debug.yaml
    python train.py --data MNIST1DDataModule --model.net.hidden [100,100] --model.net.activation relu
    python train.py --config configs/cnn.yaml                 # --model.net ConvNet1D on MNIST-1D
    python train.py --accelerator gpu --max_epochs 300        # short aliases of --trainer.*
    python train.py --lr_scheduler OneCycleLR --lr_scheduler.max_lr 0.1 --lr_scheduler_interval step
    python train.py --ckpt_path lightning_logs/<variant>/version_0/checkpoints/last.ckpt   # resume
    python train.py test --ckpt_path .../last.ckpt            # test/loss and test/acc of a checkpoint
    python train.py --print_config
"""

import math
import sys
import warnings
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from lightning.pytorch.accelerators import CPUAccelerator, CUDAAccelerator, MPSAccelerator
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lit_momentum.arguments import print_help
from lit_momentum.data import check_batches, check_contract, data_name
from lit_momentum.help import usage
from lit_momentum.model import MomentumModule
from lit_momentum.nets import same_net
from lit_momentum.optimizers import optimizer_config, same_optimizer
from lit_momentum.runs import Checkpoint, LastCheckpoint, RunLogger, check_place
from lit_momentum.schedules import STAND_IN_SETTINGS, check_schedule, overridden, schedule_config
from lit_momentum.stopping import StopOnSignal, TimeLimit
from lit_momentum.streams import BUILD, data_seed, drawing_from_setup_stream, epoch_seed, seed_globals, seed_or_zero
from lit_momentum.terminal import progress_callbacks, summary_callbacks

TRAINER_DEFAULTS = {
    "max_epochs": 2000,
    "log_every_n_steps": 1,  # every step is a point on train/loss_step
}
ACCELERATORS = {"cpu": CPUAccelerator, "gpu": CUDAAccelerator, "mps": MPSAccelerator}
# enable_version_counter off: a run continued with other --checkpoint.* options still writes its own last.ckpt (its
# directory is its own; the file it continued from is kept as resumed-from-...), not a last-v1.ckpt beside it
CHECKPOINT_DEFAULTS = {"save_last": True, "save_top_k": 0, "every_n_epochs": 100, "enable_version_counter": False}
DEFAULT_DATA = "lit_momentum.data.RandomDataModule"
LINKED = ("dim", "num_classes")  # model options set from the data module


def classes_of(dm: L.LightningDataModule) -> int:
    """The data module's number of classes (for the model and its network)."""
    return dm.num_classes


class MomentumCLI(LightningCLI):
    """LightningCLI plus ``--ckpt_path``, a ``--checkpoint.*`` callback and a run directory named for the variant.

    The network is the model's ``net`` option, a class with its options (``--model.net ConvNet1D``,
    ``--model.net.channels 8``); ``dim`` and ``num_classes`` come from the data module, for the model and its network.

    ``stage`` is ``fit`` (train, or continue a checkpoint's run) or ``test`` (evaluate a checkpoint: nothing is
    written). The data module is chosen by class path (``--data MNIST1DDataModule``, ``--data pkg.Class``) and
    checked against the contract of ``lit_momentum.data.contract`` before the model is built from it.
    """

    command = "python train.py"  # how the user runs it, for the line that says how to continue a stopped run
    model_class: type[L.LightningModule] = MomentumModule
    trains_grid = False  # the sweep's subclass trains a grid, and resumes only a grid's checkpoint

    def __init__(self, args: list[str], resume: Checkpoint | None, stage: str = "fit",
                 logs: str = "lightning_logs") -> None:
        if resume and resume.grid != self.trains_grid:
            owner = "python -m lit_momentum.sweep" if resume.grid else "python train.py"
            raise ValueError(f"--ckpt_path {resume.path}: this checkpoint is {owner}'s; continue it with {owner}")
        self.resume, self.stage, self.logs = resume, stage, logs  # logs: the runs' folder under default_root_dir
        # args are always given (aliases rewritten): Lightning's warning about args beside sys.argv does not apply
        warnings.filterwarnings("ignore", message="LightningCLI's args parameter")
        config_name = f"config_resumed_step{resume.global_step}.yaml" if resume else "config.yaml"
        if not resume:  # the default data module, chosen as if given first: a later --data or config file replaces it
            # whole (a parser default would carry its option values over to the data module chosen instead)
            args = [f"--data={DEFAULT_DATA}", *args]
        elif resume.run_config and not self.trains_grid:  # every option the run had, as the first config: a config
            args = ["--config", resume.run_config, *args]  # or a flag typed now wins (the sweep passes all of them)
        super().__init__(
            self.model_class,
            None,  # any LightningDataModule, by class path
            subclass_mode_data=True,
            args=args,
            run=False,
            seed_everything_default=0,
            auto_configure_optimizers=False,
            trainer_defaults=TRAINER_DEFAULTS,
            save_config_callback=None if stage == "test" else SaveConfigCallback,
            save_config_kwargs={"config_filename": config_name, "overwrite": resume is not None},
            parser_kwargs={"exit_on_error": False},  # main() turns a parse error into one line
        )

    def parse_arguments(self, parser: Any, args: Any) -> None:
        if "--help-all" in args:  # jsonargparse's help: every option, Lightning's included
            args = ["--help" if a == "--help-all" else a for a in args]
        elif "--help" in args or "-h" in args:  # the project's own options first
            print_help(usage(parser))
            raise SystemExit(0)
        super().parse_arguments(parser, args)

    def add_arguments_to_parser(self, parser: Any) -> None:
        # the full help's group titles (jsonargparse takes a class docstring's first line; Lightning's is cut off)
        parser.groups["data"].title = "The data module, by class path (--data CLASS) with its options (--data.*)"
        # the model's input width and classes come from the data module, once it is built: checked there first
        parser.link_arguments("data", "model.dim", compute_fn=self.input_width, apply_on="instantiate")
        parser.link_arguments("data", "model.num_classes", compute_fn=classes_of,
                              apply_on="instantiate")
        parser.add_lightning_class_args(LastCheckpoint, "checkpoint")
        parser.set_defaults({f"checkpoint.{k}": v for k, v in CHECKPOINT_DEFAULTS.items()})
        parser.add_argument("--ckpt_path", type=str | None, default=None,
                            help="Resume from this checkpoint (or test it), with the settings it was trained with.")
        parser.add_argument("--float32_matmul_precision", type=Literal["highest", "high", "medium"],
                            default=torch.get_float32_matmul_precision(),
                            help="float32 matrix products on GPUs: highest (full float32, PyTorch's default), high "
                                 "(TF32 where the GPU has it, about 3 times faster, 10 bits of mantissa), medium")
        if self.resume:  # a resumed run keeps its settings unless told otherwise (and then refuses, below)
            parser.set_defaults({f"model.{k}": v for k, v in self.resume.model_hparams.items() if k not in LINKED})
            parser.set_defaults({"data": {"class_path": self.resume.data_class or DEFAULT_DATA,
                                          "init_args": self.resume.data_hparams}})

    def input_width(self, dm: L.LightningDataModule) -> int:
        """The data module's ``dim``, once it is checked to meet the contract, on one real batch of each split the run
        uses (before the model is built, before anything is written). Its ``setup`` draws from the data's stream; the
        network built next from the run's seed alone (``lit_momentum.streams``)."""
        if not getattr(dm.setup, "draws_from_data_stream", False):
            dm.setup = drawing_from_setup_stream(dm.setup, data_seed(dm))
        try:
            return self.checked_width(dm)
        finally:
            if self.config.seed_everything is not False:  # as seed_everything left them, whatever the data drew
                seed_globals(int(self.config.seed_everything))

    def checked_width(self, dm: L.LightningDataModule) -> int:
        try:
            check_contract(dm)
            check_batches(dm, self.stage, float64=str(self.config.trainer.precision).startswith("64"))
        except ValueError as err:  # raised before the Trainer is built (jsonargparse would print the data module,
            self.data_error = err  # which may fail); the model is built with the data's own dim where it has one
            return dm.dim if isinstance(getattr(dm, "dim", None), int) and dm.dim >= 1 else 1
        if self.stage == "fit":
            try:
                check_schedule(self.config.model.lr_scheduler, self.config.model.optimizer, self.point_settings(),
                               self.schedule_length(dm), self.resumed_schedule())
            except ValueError as err:
                self.data_error = err  # (reported as the data's refusals are, before anything is written)
                return dm.dim
        self.check_fits(dm)
        return dm.dim

    def point_settings(self) -> list[dict[str, Any]]:
        """The settings of the run (the sweep: of each of its points) a scheduler starts from."""
        m = self.config.model
        return [{k: m[k] for k in STAND_IN_SETTINGS}]

    def resumed_schedule(self) -> dict[str, Any] | None:
        """The state of the scheduler in the checkpoint this run continues from, if it has one."""
        return self.resume.schedulers[0] if self.resume and self.resume.schedulers else None

    def schedule_length(self, dm: L.LightningDataModule) -> int:
        """The run's length as its scheduler steps: epochs, or optimizer steps (as Lightning estimates them)."""
        trainer = self.config.trainer
        if self.config.model.lr_scheduler_interval == "epoch":
            return trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else 10**9
        try:
            batches = len(dm.train_dataloader())
        except TypeError:  # (an iterable dataset: no length)
            batches = 10**9
        limit = 1.0 if trainer.limit_train_batches is None else trainer.limit_train_batches
        batches = min(batches, limit if isinstance(limit, int) else math.ceil(batches * float(limit)))
        per_epoch = math.ceil(batches / (trainer.accumulate_grad_batches or 1))
        epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else 10**9
        steps = trainer.max_steps if trainer.max_steps and trainer.max_steps > 0 else 10**18
        return min(per_epoch * epochs, steps)

    def check_fits(self, dm: L.LightningDataModule) -> None:
        """The sweep checks here that its grid fits in memory, before the model is allocated."""

    def before_instantiate_classes(self) -> None:
        limit = self.config.trainer.max_time
        try:  # this process's time, checked after each epoch (lit_momentum.stopping); checked before any work
            self.time_limit = TimeLimit(limit) if limit else None
        except MisconfigurationException:
            raise ValueError(f"--trainer.max_time {limit}: must be DD:HH:MM:SS (00:01:50:00: 1 hour 50 minutes) or "
                             f"a dict of timedelta's arguments ({{minutes: 110}})") from None
        config = self.config.clone()
        config.ckpt_path = None  # (a continued run is given its checkpoint on the command line)
        self.run_config = self.parser.dump(config, skip_none=False)  # kept in its checkpoints
        if self.stage == "fit":
            run = self.resume.run_dir if self.resume else None
            check_place(run or Path(self.config.trainer.default_root_dir or "."), "--trainer.default_root_dir")
        if not self.resume:
            return
        data = self.config.data
        saved = self.resume.data_class or DEFAULT_DATA
        if data.class_path != saved:
            raise ValueError(f"--data is {data.class_path} here but {saved} in the checkpoint {self.resume.path}: "
                             f"a resumed run keeps its data; drop the option")
        groups = [("model", self.config.model, self.resume.model_hparams)]
        if self.stage == "fit":  # a test may evaluate on other data (the model must still fit it, see below)
            groups.append(("data", data.init_args, self.resume.data_hparams))
        for group, now, saved_values in groups:
            for key, value in saved_values.items():
                if group == "model" and key == "optimizer":
                    if not same_optimizer(now.get(key), value):
                        raise ValueError(f"model.optimizer is {optimizer_config(now.get(key))} here but {value} in the "
                                         f"checkpoint {self.resume.path}: a resumed run keeps its optimizer; drop the "
                                         f"option")
                elif group == "model" and key == "lr_scheduler":
                    if schedule_config(now.get(key)) != value:
                        raise ValueError(f"model.lr_scheduler is {schedule_config(now.get(key))} here but {value} in "
                                         f"the checkpoint {self.resume.path}: a resumed run keeps its schedule; drop "
                                         f"the option")
                elif group == "model" and key == "net":
                    if not same_net(now.net, value):
                        raise ValueError(f"model.net is {now.net.class_path} {now.net.init_args.as_dict()} here but "
                                         f"{value['class_path']} {value['init_args']} in the checkpoint "
                                         f"{self.resume.path}: a resumed run keeps its network; drop the option")
                elif not (group == "model" and key in LINKED) and now.get(key) != value:
                    raise ValueError(f"{group}.{key} is {now.get(key)} here but {value} in the checkpoint "
                                     f"{self.resume.path}: a resumed run keeps its settings; drop the option")

    def instantiate_classes(self) -> None:
        self.data_error: ValueError | None = None  # set by input_width: the data module broke the contract
        # the data module's __init__ draws from the data's stream (the same in a grid and in each of its runs);
        # with --seed_everything false nothing is seeded
        options = self.config.data.get("init_args") or {}
        if self.config.seed_everything is not False:
            seed_globals(epoch_seed(BUILD, seed_or_zero(options.get("seed", 0)), 0))
        try:
            super().instantiate_classes()
        except Exception:
            if self.data_error:  # the model could not be built from the data: the data's error is the one
                raise self.data_error from None
            raise
        if self.resume:
            for key in LINKED:
                now, saved = self.model.hparams[key], self.resume.model_hparams.get(key)
                if saved is not None and now != saved:  # (None: a checkpoint from before the option)
                    raise ValueError(f"data: the model in {self.resume.path} has {key} {saved}, this data module "
                                     f"{now}")
        # every checkpoint records the data (class and options), so that a continued or tested run gets it back
        data = self.config.data
        self.model.data_config = {"class_path": data.class_path, "init_args": data.init_args.as_dict()}
        self.model.run_config = self.run_config
        # the model summary's FLOPs column counts a forward pass on this: one batch of the data
        # (in the precision the model computes in: Lightning converts the batches, not this)
        batch = getattr(self.datamodule, "batch_size", 1)
        example = torch.zeros(batch if isinstance(batch, int) else 1, self.datamodule.dim)
        self.model.example_input_array = self.trainer.precision_plugin.convert_input(example)

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[L.Callback]) -> L.Trainer:
        if self.stage == "test":  # nothing to save: no checkpoint callback (it would warn of its directory)
            callbacks = [c for c in callbacks if not isinstance(c, LastCheckpoint)]
        return super()._instantiate_trainer(config, callbacks)

    def resumes_in_place(self) -> bool:
        """Whether the resumed run writes into its checkpoint's directory (and so overwrites the file)."""
        return bool(self.resume and self.resume.run_dir)

    def data_options(self) -> dict[str, Any]:
        """The data module's options as configured (its class's own defaults filled in)."""
        options = self.config.data.get("init_args")
        return options.as_dict() if hasattr(options, "as_dict") else dict(options or {})

    def make_logger(self) -> Logger:
        """TensorBoard, one directory per run (when the user chose no logger)."""
        run = self.resume.run_dir if self.resume else None
        root = Path(self.config.trainer.default_root_dir or ".") / self.logs
        return RunLogger(
            save_dir=run.parent.parent if run else root,
            name=run.parent.name if run else "_".join(filter(None, [data_name(self.datamodule, self.data_options()),
                                                                    self.model.run_name])),
            version=run.name if run else None,
            default_hp_metric=False,
            purge_step=self.resume.global_step if run else None,  # drop points logged after the checkpoint
        )

    def say_overridden(self) -> None:
        """One line when the scheduler replaces a setting typed (OneCycleLR: lr, momentum; the name leaves it out)."""
        m = self.config.model
        if self.stage != "fit" or self.resume or not m.lr_scheduler:
            return
        replaced = overridden(m.lr_scheduler, m.optimizer, self.point_settings()[0], 1000)
        if replaced:
            name = schedule_config(m.lr_scheduler)["class_path"].rpartition(".")[2]
            print(f"lr_scheduler: {name} starts the run at {', '.join(replaced)} (its own options set them)",
                  file=sys.stderr)

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        if self.data_error:  # before the Trainer says anything (its device lines)
            raise self.data_error
        self.say_overridden()
        torch.set_float32_matmul_precision(self.config.float32_matmul_precision)
        if torch.cuda.is_available():  # said where it matters: it decides whether float32 products use TF32
            rank_zero_info(f"float32 matmul precision: {self.config.float32_matmul_precision} "
                           "(--float32_matmul_precision)")
        if self.stage == "test":
            kwargs["logger"] = False  # a test prints its numbers and writes nothing
        elif self.config.trainer.logger in (None, True):  # not chosen by the user
            kwargs["logger"] = self.make_logger()
        if self.config.trainer.use_distributed_sampler is True:  # Lightning's default: keep it for other data
            # the package's data modules split each global batch across ranks themselves
            kwargs["use_distributed_sampler"] = not getattr(self.datamodule, "shards_batches", False)
        callbacks = progress_callbacks(list(self.config_init.trainer.get("callbacks") or []),
                                       self.config.trainer.enable_progress_bar)
        callbacks = summary_callbacks(callbacks, self.config.trainer.enable_model_summary)
        self.stopper = StopOnSignal()  # Ctrl-C and SIGTERM: stop after this epoch, with its checkpoint
        if self.time_limit:  # ours, not Lightning's Timer
            kwargs["max_time"] = None
        kwargs["callbacks"] = [*callbacks, self.stopper, *([self.time_limit] if self.time_limit else [])]
        try:
            return super().instantiate_trainer(**kwargs)
        except (MisconfigurationException, TypeError) as err:  # --accelerator gpu without one, --devices x
            trainer = self.config.trainer
            available = ", ".join(n for n, acc in ACCELERATORS.items() if acc.is_available())
            typed = f"--trainer.accelerator {trainer.accelerator} " if trainer.accelerator != "auto" else ""
            raise ValueError(f"{typed}--trainer.devices {trainer.devices}: {err} (accelerators available here: "
                             f"{available}, auto)") from None
        except (RuntimeError, ValueError) as err:  # Lightning's rules for a job under SLURM (srun -n, devices)
            if "SLURM" not in str(err):
                raise
            raise ValueError(f"SLURM: {err}") from None
