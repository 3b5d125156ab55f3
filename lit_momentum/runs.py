"""Where a run writes: its own log directory (never reused by another run) and its ``last.ckpt``.

    lightning_logs/<variant>/version_<n>/      events.out.tfevents.*, hparams.yaml, config.yaml
    lightning_logs/<variant>/version_<n>/checkpoints/last.ckpt

A resumed run (``--ckpt_path <run>/checkpoints/last.ckpt``) keeps writing into the directory of its checkpoint.
"""

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_only


class RunLogger(TensorBoardLogger):
    """TensorBoard logger whose new version directory is claimed atomically (``mkdir``) on first use.

    Two runs started at once with the same settings therefore get two directories, and a bad option that stops a
    run before training leaves none behind. A continued run's event file sorts after the run's earlier ones, which
    TensorBoard reads in name order (its restart marker drops the points logged after the checkpoint only if read
    last): names start with the second they were made in, then a per-process counter that sorts 10 before 9, so a
    run continued within the second its last file was made in (in one process: a notebook, the tests) waits for
    the next second.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if kwargs.get("purge_step") is not None:
            made = [int(p.name.split(".")[3]) for p in Path(self.log_dir).glob("events.out.tfevents.*")
                    if p.name.split(".")[3].isdigit()]
            if made and time.time() < max(made) + 1:
                time.sleep(max(made) + 1 - time.time())

    def _get_next_version(self) -> int:
        version = super()._get_next_version()
        if rank_zero_only.rank != 0:  # only rank 0 writes; the others learn the directory by broadcast
            return version
        os.makedirs(self.root_dir, exist_ok=True)
        while True:
            try:
                os.mkdir(os.path.join(self.root_dir, f"version_{version}"))
                return version
            except FileExistsError:
                version += 1


class LastCheckpoint(ModelCheckpoint):
    """ModelCheckpoint that also writes ``last.ckpt`` after the final epoch, and writes every file atomically.

    Lightning's ``save_last`` alone skips the final epoch when it is not a multiple of ``every_n_epochs``; a crash
    during a save could leave a half-written ``last.ckpt``. Here a save goes to a temporary file first.
    """

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        epoch = trainer.current_epoch + 1
        last_epoch = trainer.max_epochs is not None and 0 < trainer.max_epochs <= epoch
        last_step = trainer.max_steps is not None and 0 < trainer.max_steps <= trainer.global_step
        due = epoch % max(self._every_n_epochs, 1) == 0 or last_epoch or last_step or trainer.should_stop
        if self.save_last and due and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        # a run resumed into its own directory keeps overwriting its last.ckpt, however the path was spelled
        saved = state_dict.get("dirpath")
        if saved and self.dirpath and Path(saved).resolve() == Path(self.dirpath).resolve():
            state_dict = {**state_dict, "dirpath": self.dirpath}
        super().load_state_dict(state_dict)

    def _save_checkpoint(self, trainer: L.Trainer, filepath: str) -> None:
        tmp = filepath + ".tmp"
        super()._save_checkpoint(trainer, tmp)
        if trainer.is_global_zero:
            os.replace(tmp, filepath)
        self._last_checkpoint_saved = filepath
        trainer.strategy.barrier()


def check_place(path: Path, option: str) -> None:
    """Refuse, in one line, an output directory that is a file, or that cannot be created or written (a read-only
    place, a full disk): before anything is written. The nearest existing directory is tried with a temporary file
    of 64 KiB, written, synced and removed."""
    existing = Path(os.path.abspath(path))
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        where = "is a file" if existing == Path(os.path.abspath(path)) else f"is inside {existing}, a file"
        raise ValueError(f"{option} {path}: {where}, not a directory")
    try:
        with tempfile.TemporaryFile(dir=existing) as f:
            f.write(bytes(65536))
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        raise ValueError(f"{option} {path}: cannot write in {existing} ({err.strerror})") from None


def next_version_dir(root: Path) -> Path:
    """``root/version_<n>`` with the first n not taken yet (not created: see ``claim_dir``)."""
    n = 0
    while (root / f"version_{n}").exists():
        n += 1
    return root / f"version_{n}"


def claim_dir(path: Path) -> Path:
    """Create ``path`` atomically; if another process got there first, the next free ``version_<n>`` beside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            if not path.name.startswith("version_"):
                return path  # the user's own --out, checked to be empty before
            path = next_version_dir(path.parent)


@dataclass
class Checkpoint:
    """What a run resumes from: the file, the settings it was trained with and where it stopped."""

    path: Path
    model_hparams: dict[str, Any]
    data_hparams: dict[str, Any]
    epoch: int
    global_step: int
    grid: bool  # a sweep's checkpoint (the whole grid), not a single run's
    data_class: str | None = None  # the data module's class path
    schedulers: list[dict[str, Any]] | None = None  # the learning-rate schedulers' states, as Lightning saved them
    run_config: str | None = None  # every option the run was (last) started with, as YAML: a continued run's base
    epochs_done: int = 0  # training epochs finished (a checkpoint written mid-epoch: the ones before it)

    @property
    def run_dir(self) -> Path | None:
        """The run directory the checkpoint was written in, if it still looks like one."""
        run = self.path.resolve().parent.parent
        return run if self.path.parent.name == "checkpoints" and (run / "hparams.yaml").is_file() else None


def upgrade_hparams(hparams: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's model settings as today's options: before there was ``model.net`` the MLP's ``hidden`` and
    ``activation`` were the model's own (its weights are laid out the same: ``MLP`` is an ``nn.Sequential``)."""
    if "net" in hparams or not {"hidden", "activation"} & hparams.keys():
        return hparams
    mlp = {k: hparams.pop(k) for k in ("hidden", "activation") if k in hparams}
    return {**hparams, "net": {"class_path": "lit_momentum.nets.mlp.MLP", "init_args": mlp}}


def read_checkpoint(path: str) -> Checkpoint:
    """Load a checkpoint's metadata without executing anything stored in it (``weights_only``)."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"--ckpt_path {path}: no such file")
    try:
        ckpt = torch.load(file, map_location="cpu", weights_only=True)
        model_hparams = upgrade_hparams({k: v for k, v in ckpt["hyper_parameters"].items() if not k.startswith("_")})
        saved = ckpt.get("datamodule_hyper_parameters", {})  # where checkpoints before data_config had it
        data = ckpt.get("data_config") or {"class_path": saved.get("_class_path"), "init_args": {
            k: v for k, v in saved.items() if not k.startswith("_") and k != "num_workers"}}  # removed: always 0
        data_hparams = dict(data["init_args"])
        epoch, step = int(ckpt["epoch"]), int(ckpt["global_step"])
        progress = ckpt.get("loops", {}).get("fit_loop", {}).get("epoch_progress", {}).get("current", {})
        done = int(progress.get("processed", epoch + 1))
    except Exception as err:  # truncated, corrupt, foreign, or carrying pickled code: refused before training
        code = [line.strip() for line in str(err).splitlines() if "GLOBAL" in line or "Unsupported global" in line]
        reason = f"refused, it carries pickled code ({code[0]})" if code else "truncated, corrupt or foreign"
        raise ValueError(f"--ckpt_path {path}: not a lit_momentum checkpoint: {reason}") from None
    return Checkpoint(file, model_hparams, data_hparams, epoch, step, grid="grid_history" in ckpt,
                      data_class=data["class_path"], schedulers=ckpt.get("lr_schedulers"),
                      run_config=ckpt.get("run_config"), epochs_done=done)
