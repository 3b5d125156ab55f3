"""The command ``python train.py [fit|test] ARGS``: build everything (bad input: one line, nothing written), then
train (or continue) a run, or test a checkpoint.

    python train.py                                           # the article's experiment (2000 epochs)
    python train.py --ckpt_path .../last.ckpt                 # continue a run, bit for bit
    python train.py test --ckpt_path .../last.ckpt            # test/loss and test/acc of a checkpoint
"""

import inspect
import shutil
import sys
from argparse import ArgumentError
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities.model_helpers import is_overridden

from lit_momentum.arguments import find_option, normalized, one_line, resume_command
from lit_momentum.cli import MomentumCLI
from lit_momentum.epochs import NonFiniteLossError
from lit_momentum.runs import Checkpoint, read_checkpoint
from lit_momentum.stopping import EXIT_CODES, EXIT_TIME, finished
from lit_momentum.terminal import quiet, quiet_lightning, report
from lit_momentum.threads import shared_machine


def build(cli_class: type[MomentumCLI], argv: list[str], stage: str = "fit", **kwargs: Any
          ) -> tuple[MomentumCLI, Checkpoint | None]:
    """Parse and build everything; bad input ends in one line on stderr and exit code 1, before anything is written.
    ``kwargs`` go to the CLI class (the sweep's takes where its unit goes)."""
    try:
        ckpt_path = find_option(argv, "--ckpt_path")
        if stage == "test" and not ckpt_path and not {"-h", "--help", "--help-all"} & set(argv):
            raise ValueError("test: give the checkpoint to test, --ckpt_path PATH")
        resume = read_checkpoint(ckpt_path) if ckpt_path else None
        cli = cli_class(argv, resume, stage, **kwargs)
        if cli.config.ckpt_path != ckpt_path:  # set in a config file: its settings would go unchecked
            raise ValueError("ckpt_path: give it on the command line (--ckpt_path PATH), not in a config file")
    except (ValueError, ArgumentError) as err:  # bad input: one line, before anything is written
        sys.exit("error: " + one_line(err))
    return cli, resume


def last_checkpoint(trainer: L.Trainer) -> str:
    """The path of the run's ``last.ckpt`` on disk, or "" when none was written."""
    return trainer.checkpoint_callback.last_model_path if trainer.checkpoint_callback else ""


def fit(cli: MomentumCLI, resume: Checkpoint | None, argv: list[str]) -> None:
    """Train (continuing ``resume``, whose file is kept as ``resumed-from-...``). A runaway loss ends in one line;
    so does a stop by Ctrl-C or SIGTERM, with the command that continues the run, and exit code 130 or 143."""
    cli.stopper.install()  # from here on a signal stops the run at the next epoch's end, not mid-step
    if resume and finished(cli.trainer, resume.epochs_done, resume.global_step):  # nothing left to train
        if cli.trainer.is_global_zero:
            print(f"--ckpt_path {resume.path}: this run has finished its {resume.epochs_done} epochs "
                  f"({resume.global_step} steps); to train it further, give a larger budget: "
                  f"{resume_command(cli.command, argv, str(resume.path))} --max_epochs {2 * resume.epochs_done}",
                  file=sys.stderr)
        raise SystemExit(0)  # (nothing written, nothing to report)
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
    if cli.time_limit and cli.time_limit.stopped_early(cli.trainer):  # a unit of a sweep stays unfinished
        if cli.trainer.is_global_zero:
            print(cli.time_limit.message(resume_command(cli.command, argv, last_checkpoint(cli.trainer))),
                  file=sys.stderr)
        sys.exit(EXIT_TIME)


def changed_options(datamodule: L.LightningDataModule) -> str:
    """A data module's options that differ from its class's defaults, ``dim 64, num_samples 256``: what a test
    says it tested (a checkpoint's data, whatever config was typed beside it)."""
    defaults = inspect.signature(type(datamodule).__init__).parameters
    return ", ".join(f"{k} {v}" for k, v in datamodule.hparams.items() if k in defaults and defaults[k].default != v)


def test(cli: MomentumCLI) -> None:
    """Evaluate the checkpoint's weights on the data module's test set; print where from and the metrics, rounded as
    the progress bar rounds them, and nothing else (nothing is written)."""
    if not is_overridden("test_dataloader", cli.datamodule, L.LightningDataModule):
        sys.exit(f"error: test: {type(cli.datamodule).__name__} has no test set")
    (results,) = cli.trainer.test(cli.model, datamodule=cli.datamodule, ckpt_path=cli.config.ckpt_path,
                                  weights_only=True, verbose=False)
    print(f"tested {cli.config.ckpt_path} on {type(cli.datamodule).__name__}'s test set, with the data the run was "
          f"trained on ({changed_options(cli.datamodule) or 'its defaults'}; from the checkpoint)")
    for name, value in sorted(results.items()):
        print(f"{name:<10} {value:.4g}")


def close_distributed() -> None:
    """End the process group a DDP run started (Lightning leaves it open): a process that exits with it alive can
    abort while exiting (gloo's threads: "terminate called without an active exception", exit code -6) after a run
    that finished or stopped by a signal (seen in CI: 143 became -6), and the exit code would tell a scheduler it
    failed."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def main(args: list[str] | None = None) -> None:
    """``python train.py [fit|test] ARGS``: build, then fit (the default) and say where everything is, or test."""
    quiet()
    argv = sys.argv[1:] if args is None else args
    stage = argv[0] if argv[:1] in (["fit"], ["test"]) else "fit"
    argv = argv[1:] if argv[:1] == [stage] else argv
    if stage == "test":  # prints its numbers only: Lightning's notes on seeds, devices and restoring states go
        quiet_lightning()
    cli, resume = build(MomentumCLI, normalized(argv), stage)
    if stage == "test":
        test(cli)
        return
    try:  # the process group ends however fit ends: a stop by signal or time limit exits through sys.exit
        with shared_machine(1):  # under SLURM: the task's cores (a single process elsewhere: PyTorch's default)
            fit(cli, resume, argv)
        report(cli.trainer)
    finally:
        close_distributed()
