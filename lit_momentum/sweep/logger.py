"""TensorBoard for a grid of runs: one run directory per grid point under one root, so TensorBoard overlays them.

    OUT/3_lr1e-05_m0.9_seed0/events.out.tfevents.*  epoch, train/loss_step, train/loss, train/loss_best, train/acc,
                                                    val/loss, val/acc, val/acc_best, train/diverged (0 or 1);
                                                    train/diverged_epoch if it did; its session's end status
    OUT/<first point>/events.out.tfevents.0.sweep   the HParams experiment and the custom-scalars layout (in a point's
                                                    run: an experiment of its own would show as an empty run)
    OUT/seed_bands/3_lr1e-05_m0.9/events.out.tfevents.*  bands/{train_loss,val_acc}_{mean,min,max,seeds} over seeds

The HParams tab's metrics are the points' own curves, read at their last value (as summary.csv reads them; a diverged
point's curves end at its last epoch within the bound, see GridModule.diverged_metrics); its columns are the settings
that vary (TensorBoard ticks only the first five, alphabetically). Metric keys are ``<run>/<tag>``
(``3_lr1e-05_m0.9_seed0/train/loss``, ``seed_bands/3_lr1e-05_m0.9/bands/train_loss_mean``). Events are whole protos
written with TensorBoard's own record writer, a run's values of one step packed into one event, and appended once per
``save()``: no SummaryWriter per point (about 80 us a scalar here) and no writer thread or open file per point.
"""

import os
import socket
import time
from argparse import Namespace
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.hparams import api_pb2, metadata, plugin_data_pb2
from tensorboard.plugins.hparams import summary_v2 as hp
from torch.utils.tensorboard.summary import custom_scalars

from lit_momentum.sweep.records import framed

# a group of their own (not the points' train/ and val/, where a single point's view would show empty cards)
BAND_TAGS = ("bands/train_loss_mean", "bands/train_loss_min", "bands/train_loss_max")
VAL_BAND_TAGS = ("bands/val_acc_mean", "bands/val_acc_min", "bands/val_acc_max")
HPARAMS_METRICS = ("train/loss", "train/loss_best", "train/diverged")  # logged by every point (see GridModule)
VAL_METRICS = ("val/acc_best",)  # (not val/loss: a point that diverged in its first epoch has none to show)
EXPERIMENT_FILE = "events.out.tfevents.0.sweep"


def columns(names: list[str], settings: list[dict[str, Any]]) -> list[str]:
    """The HParams columns: the settings that differ between points (seed included). TensorBoard lists columns
    alphabetically and ticks the first five, so constant ones (dampening 0, nesterov false) would hide the seed;
    they are in config.yaml, summary.csv and each point's own hparams."""
    varies = [n for n in names if len({repr(s.get(n)) for s in settings}) > 1]
    return varies or names


def domain(values: list[Any]) -> hp.Discrete:
    """A setting's values as a discrete domain (the HParams table then filters by value, and parallel coordinates
    draws one tick per value): numbers as numbers, booleans as booleans, anything else as text."""
    unique = list(dict.fromkeys(values))
    if all(isinstance(v, bool) for v in unique):
        return hp.Discrete(sorted(unique))
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in unique):
        return hp.Discrete(sorted(float(v) for v in unique))
    return hp.Discrete(sorted(str(v) for v in unique))


def experiment_events(names: list[str], metrics: tuple[str, ...], seed_bands: bool,
                      settings: list[dict[str, Any]] | None = None) -> list[event_pb2.Event]:
    """The experiment's events: the HParams experiment (which settings with their grid values, which metrics) and,
    with several seeds, the custom-scalars layout that shows every setting's mean over seeds with a min-max band."""
    hparams = [hp.HParam(n, domain([s[n] for s in settings]) if settings else None) for n in names]
    config = hp.hparams_config_pb(hparams=hparams, metrics=[hp.Metric(t) for t in metrics])
    events = [event_pb2.Event(step=0, summary=config)]
    if seed_bands:
        charts = {"train/loss: mean over seeds, min-max band": ["Margin", list(BAND_TAGS)]}
        if any(m.startswith("val/") for m in metrics):
            charts["val/acc: mean over seeds, min-max band"] = ["Margin", list(VAL_BAND_TAGS)]
        events.append(event_pb2.Event(step=0, summary=custom_scalars({"seed bands": charts})))
    return events


def write_experiment(run: Path, names: list[str], metrics: tuple[str, ...], seed_bands: bool,
                     settings: list[dict[str, Any]] | None = None) -> None:
    """The experiment's events in one file of a fixed name in one point's run (writing it again replaces it);
    ``settings``: every point's, for each setting's domain."""
    run.mkdir(parents=True, exist_ok=True)
    tmp = run / ".events.tmp"
    events = [event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2")]
    for event in experiment_events(names, metrics, seed_bands, settings):
        event.wall_time = time.time()
        events.append(event)
    with open(tmp, "wb") as f:
        f.write(b"".join(framed([e.SerializeToString() for e in events])))
    os.replace(tmp, run / EXPERIMENT_FILE)


def session_end(status: int) -> summary_pb2.Summary:
    """The HParams plugin's session-end summary (TensorBoard's own ``session_end_pb`` needs TensorFlow)."""
    info = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=time.time())
    content = plugin_data_pb2.HParamsPluginData(session_end_info=info, version=metadata.PLUGIN_DATA_VERSION)
    plugin = summary_pb2.SummaryMetadata.PluginData(plugin_name=metadata.PLUGIN_NAME,
                                                    content=content.SerializeToString())
    return summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=metadata.SESSION_END_INFO_TAG,
                                                                metadata=summary_pb2.SummaryMetadata(
                                                                    plugin_data=plugin))])


def seed_bands(values: dict[str, list[float]], tag: str) -> dict[str, float]:
    """``seed_bands/<setting>/bands/<tag>_{mean,min,max}`` (``train/loss``: ``bands/train_loss_mean``, ...) over the
    seeds of each setting still training, and ``<tag>_seeds``, how many they are (a band's mean moves when a seed
    diverges and leaves it; a band of one seed has no width)."""
    out = {}
    for setting, vals in values.items():
        run = f"seed_bands/{setting}/bands/{tag.replace('/', '_')}"
        out.update({f"{run}_mean": sum(vals) / len(vals), f"{run}_min": min(vals), f"{run}_max": max(vals),
                    f"{run}_seeds": len(vals)})
    return out


class GridLogger(Logger):
    """Writes ``<run>/<tag>`` metrics into ``root/<run>``; ``points`` maps each grid point's run to its settings.

    ``purge_step`` (on resume): every run's new event file starts with TensorBoard's restart marker at that step, so
    the points a killed sweep wrote after its checkpoint are dropped and the curves continue without duplicates.
    """

    def __init__(self, root: str | Path, points: dict[str, dict[str, Any]], seed_bands: bool,
                 metrics: tuple[str, ...] = HPARAMS_METRICS, purge_step: int | None = None,
                 experiment: bool = True, home: str | Path | None = None) -> None:
        super().__init__()
        self.home = Path(home or root)  # the unit's own directory: its config.yaml (Lightning's log_dir)
        self.root, self.points, self.seed_bands, self.purge_step = Path(root), points, seed_bands, purge_step
        self.metrics = metrics  # the HParams tab's metric columns
        self.experiment = experiment  # write the root's experiment (False: one unit of several; the merge writes it)
        self.files: dict[str, Path] = {}  # run -> this process's event file
        self.made: set[str] = set()  # runs whose directory exists (made once: not two syscalls per run and epoch)
        self.pending: dict[str, list[bytes]] = {}  # run -> serialized events not yet on disk
        self.events: dict[tuple[str, tuple[str, ...]], tuple[event_pb2.Event, list]] = {}  # (run, tags) -> event, slots

    @property
    def name(self) -> str:
        return ""

    @property
    def version(self) -> str:
        return ""

    @property
    def save_dir(self) -> str:  # what Lightning saves beside the logs (the config) goes to the unit's directory
        return str(self.home)

    @property
    def log_dir(self) -> str:
        return str(self.home)

    def write(self, run: str, event: event_pb2.Event) -> None:
        if run not in self.files:
            # TensorBoard reads a run's files in the order of their names: the time in nanoseconds, so that a run
            # continued within the second it was stopped (in another process, with a lower pid) is read after it
            name = f"events.out.tfevents.{time.time_ns()}.{socket.gethostname()}.{os.getpid()}.grid"
            self.files[run] = self.root / run / name
            self.pending[run] = [event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2")
                                 .SerializeToString()]
            if self.purge_step is not None:  # TensorBoard drops this run's older events at steps >= purge_step
                restart = event_pb2.SessionLog(status=event_pb2.SessionLog.START)
                self.pending[run].append(event_pb2.Event(wall_time=time.time(), step=self.purge_step,
                                                         session_log=restart).SerializeToString())
        event.wall_time = time.time()
        self.pending[run].append(event.SerializeToString())

    @rank_zero_only
    def log_hyperparams(self, params: dict[str, Any] | Namespace, *args: Any, **kwargs: Any) -> None:
        """The HParams tab: the experiment (which settings, which metrics) and each point's settings. Written once:
        a resumed sweep's runs already hold theirs."""
        if self.purge_step is not None:
            return
        if self.experiment:
            settings = list(self.points.values())
            write_experiment(self.root / next(iter(self.points)), columns(list(settings[0]), settings), self.metrics,
                             self.seed_bands, settings)
        for run, settings in self.points.items():
            self.write(run, event_pb2.Event(step=0, summary=hp.hparams_pb(settings, trial_id=run)))
        self.save()

    @rank_zero_only
    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        by_run: dict[str, list[tuple[str, float]]] = {}
        for key, value in metrics.items():  # <point>/<tag> or seed_bands/<setting>/<tag>
            parts = key.split("/")
            cut = 2 if parts[0] == "seed_bands" else 1
            by_run.setdefault("/".join(parts[:cut]), []).append(("/".join(parts[cut:]), value))
        self.log_runs(by_run, step or 0)

    @rank_zero_only
    def log_runs(self, runs: dict[str, list[tuple[str, float]]], step: int) -> None:
        """Each run's ``(tag, value)`` pairs at ``step``, an event per run with values."""
        for run, values in runs.items():
            if values:
                self.log_steps(run, tuple(tag for tag, _ in values), [(step, [value for _, value in values])])

    @rank_zero_only
    def log_steps(self, run: str, tags: tuple[str, ...], rows: Iterable[tuple[int, Sequence[float]]]) -> None:
        """One run's values of ``tags`` at each step of ``rows`` (``(step, values)``, steps in order): an event per
        step, serialized at once by ``write``. The grid's per-step curves come here a run at a time: its message is
        built once and filled in again at each step (building new messages cost five times their serializing: 6 ms
        against 1.3 for a 32-point grid's 1824 step values), its value slots held (reaching them through
        ``event.summary.value`` again cost four times setting them)."""
        held = self.events.get((run, tags))
        if held is None:
            event = event_pb2.Event(summary=summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag)
                                                                      for tag in tags]))
            held = self.events[run, tags] = (event, list(event.summary.value))
        event, slots = held
        for step, values in rows:
            for slot, value in zip(slots, values):
                slot.simple_value = float(value)
            event.step = step
            self.write(run, event)

    @rank_zero_only
    def save(self) -> None:
        """Append every run's pending events to its file (opened and closed here: no file stays open per point)."""
        runs = [(run, events) for run, events in self.pending.items() if events]
        records = iter(framed([data for _, events in runs for data in events]))  # every CRC at once
        for run, events in runs:
            if run not in self.made:
                self.files[run].parent.mkdir(parents=True, exist_ok=True)
                self.made.add(run)
            with open(self.files[run], "ab") as f:
                f.write(b"".join(next(records) for _ in events))
            events.clear()

    @rank_zero_only
    def end_sessions(self, failed: dict[str, bool]) -> None:
        """Each point's HParams session ends: Failure for a point that diverged, Success for the others (the
        HParams tab's Status filter); a continued sweep writes them again when it ends."""
        for run, bad in failed.items():
            status = api_pb2.STATUS_FAILURE if bad else api_pb2.STATUS_SUCCESS
            self.write(run, event_pb2.Event(summary=session_end(status)))
        self.save()

    @rank_zero_only
    def finalize(self, status: str) -> None:
        self.save()
