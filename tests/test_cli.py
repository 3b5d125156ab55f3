"""``python train.py`` as a user runs it: real configs, real TensorBoard files read back; in a real process where
what the process prints or returns is checked, else through the same entry point in this one (``main``).

Bugs these exist to catch: a missing TensorBoard tag or step; a config or flag that does not take effect, or the
wrong one winning when stacked; two runs sharing a directory; a GPU request that ends in a traceback.
"""

import csv
import importlib
import inspect
import re
from pathlib import Path

import pytest
import torch
import yaml

from lit_momentum import data as data_modules
from lit_momentum import nets
from lit_momentum.arguments import ALIASES, aliased
from lit_momentum.command import main
from lit_momentum.model import MomentumModule
from tests.conftest import CONFIGS, TINY_DATA, load_ckpt, run_dirs, run_train, scalars, spelled


def test_writes_tensorboard_events_with_every_tag_and_point(tiny: list[str], tmp_path: Path) -> None:
    proc = run_train(*tiny, "--accelerator", "cpu", cwd=tmp_path)
    (run,) = run_dirs(tmp_path)
    assert run.parent.name == f"{TINY_DATA}_builtin_m0.9_lr1e-05" and run.name == "version_0"
    assert list(run.glob("events.out.tfevents.*")) and (run / "checkpoints/last.ckpt").is_file()
    logged = scalars(run)
    epochs, steps = 5, 4  # debug.yaml: 5 epochs of 256 samples in batches of 64
    assert len(logged["train/loss_step"]) == epochs * steps
    assert len(logged["train/loss"]) == len(logged["train/acc"]) == epochs
    assert all(0 <= acc <= 1 for _, acc in logged["train/acc"])
    assert f"tensorboard --logdir {tmp_path / 'lightning_logs'}" in proc.stdout


def test_yaml_and_flag_overrides_take_effect(tiny: list[str], tmp_path: Path) -> None:
    main([*tiny, "--config", str(CONFIGS / "manual.yaml"), "--max_epochs", "3", "--model.momentum", "0.8",
          "--data.batch_size", "32"])
    (run,) = run_dirs(tmp_path)
    assert run.parent.name == f"{TINY_DATA}-batch_size32_manual_m0.8_lr1e-05"  # (the data as configured)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["momentum_impl"] == "manual" and config["model"]["momentum"] == 0.8
    assert config["trainer"]["max_epochs"] == 3 and config["data"]["init_args"]["dim"] == 64  # debug.yaml
    assert len(scalars(run)["train/loss_step"]) == 3 * 8  # 256 samples / 32


def test_stacked_configs_and_order(tiny: list[str], tmp_path: Path) -> None:
    """Later --config files win over earlier ones; a typed flag (an alias too) wins over every config, wherever it
    stands: a config given after it never silently replaces it."""
    main([*tiny, "--max_epochs", "2", "--model.lr", "0.001", "--config", str(CONFIGS / "nesterov.yaml"),
          "--config", str(CONFIGS / "debug.yaml")])
    (run,) = run_dirs(tmp_path)
    assert run.parent.name == f"{TINY_DATA}_builtin_nesterov_m0.9_lr0.001"  # nesterov.yaml's lr 1e-5 did not win
    ckpt = load_ckpt(run / "checkpoints/last.ckpt")
    assert ckpt["hyper_parameters"]["nesterov"] is True and ckpt["hyper_parameters"]["net"]["class_path"]
    assert ckpt["epoch"] == 1, "--max_epochs 2 was typed: debug.yaml's 5 epochs, given after it, must not win"


def test_a_config_after_typed_sweep_axes_does_not_replace_them(tiny: list[str], tmp_path: Path) -> None:
    """The sweep's typed axes and options win over a config given after them (it trained one SGD point, silently)."""
    from lit_momentum.sweep import main as sweep_main

    sweep_main([*tiny, "--out", str(tmp_path / "out"), "--lr", "1e-3", "1e-2", "--momentum", "0", "0.9",
                "--model.optimizer", "adam", "--max_epochs", "1", "--config", str(CONFIGS / "mnist1d.yaml"),
                "--data.num_samples", "200"])
    rows = list(csv.DictReader(open(tmp_path / "out" / "summary.csv")))
    assert sorted(spelled(r["run"]) for r in rows) == sorted(spelled(f"lr{lr}_m{m}_adam_seed0")
                                                            for lr in ("0.001", "0.01") for m in ("0", "0.9"))


@pytest.mark.parametrize("spelling", [["-c", "{f}"], ["-c{f}"], ["-c={f}"], ["--conf", "{f}"], ["--config={f}"]])
def test_a_typed_flag_wins_over_a_config_in_every_spelling_the_parser_takes(
        spelling: list[str], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """``-c FILE`` (LightningCLI's short form), ``-cFILE``, ``-c=FILE``, ``--conf FILE`` (an abbreviation argparse
    takes) and ``--config=FILE`` are configs like ``--config FILE``: moved to the front, so the typed lr wins (each
    trained at the config's lr, silently), in train.py and in the sweep."""
    from lit_momentum.sweep.main import prepare

    (tmp_path / "lr.yaml").write_text("model:\n  lr: 0.25\n")
    config = [part.format(f=tmp_path / "lr.yaml") for part in spelling]
    with pytest.raises(SystemExit):
        main(["--model.lr", "0.5", *config, "--print_config"])
    assert yaml.safe_load(capsys.readouterr().out)["model"]["lr"] == 0.5
    sweep = prepare(["--config", str(CONFIGS / "debug.yaml"), "--lr", "0.5", "0.1", *config,
                     "--out", str(tmp_path / "out")])
    assert sweep["cfg"].model.lr == [0.5, 0.1] and not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", ["sgd", "manual", "builtin", "nesterov", "adam", "debug", "mnist1d"])
def test_every_config_parses_alone(name: str, tmp_path: Path, capsys: pytest.CaptureFixture,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``--print_config`` shows each config's values in the resolved config (in process: parsing only)."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["--config", str(CONFIGS / f"{name}.yaml"), "--print_config"])
    assert exit_.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    mine = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    for group, values in mine.items():
        for key, value in values.items():
            shown = printed[group]
            if group == "data" and key != "class_path":  # a bare data option belongs to the chosen class
                shown = shown["init_args"]
            assert shown[key] == value, (group, key)
    assert not (tmp_path / "lightning_logs").exists()


def help_text(args: list[str], capsys: pytest.CaptureFixture) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(args)
    assert exit_.value.code in (0, None)
    return capsys.readouterr().out


def test_the_help_leads_with_the_projects_options_and_says_where_the_rest_is(
        tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--help`` is a page: the test subcommand, every config, every optimizer option with the code's default,
    every built-in network and data module, the schedule's options, the README's short aliases; each option it names
    exists; ``--help-all`` has the rest."""
    monkeypatch.chdir(tmp_path)
    text = help_text(["--help"], capsys)
    lines = text.splitlines()
    assert len(lines) < 80 and max(map(len, lines)) <= 116, (len(lines), max(map(len, lines)))
    assert "python train.py test --ckpt_path" in text and "--help-all" in text
    configs = [p.name for p in CONFIGS.glob("*.yaml") if not p.name.startswith("sweep")]
    assert all(f"configs/{name}" in text for name in configs)
    assert all(alias in text for alias in ALIASES)  # --max_epochs, --accelerator, --devices, --precision
    defaults = inspect.signature(MomentumModule).parameters
    for name in ("optimizer", "momentum_impl", "lr", "momentum", "dampening", "nesterov", "weight_decay", "beta2",
                 "eps"):
        (row,) = [i for i, line in enumerate(lines) if line.startswith(f"  --model.{name} ")]
        end = next(i for i in range(row + 1, len(lines)) if not lines[i].startswith("   "))
        described = " ".join(lines[row:end])  # the row and its wrapped lines
        value = defaults[name].default
        assert f"(default {str(value).lower() if isinstance(value, bool) else value})" in described, described
    # every built-in network and data module, and the schedule's options, by the names a user types
    def section(title: str) -> str:
        return text.split(f"\n{title}")[1].split("\n\n")[0]

    assert all(cls.__name__ in section("network (") for cls in nets.BUILT_IN), section("network (")
    assert all(cls.__name__ in section("data:") for cls in data_modules.BUILT_IN), section("data:")
    for option in ("--lr_scheduler CLASS", "--lr_scheduler.OPTION V", "--lr_scheduler_interval {epoch,step}"):
        assert f"  {option}" in text
    full = help_text(["--help-all"], capsys)
    named = set(re.findall(r"^  (--[\w.]+)", text, re.M)) - {"--model.net.OPTION", "--data.OPTION",
                                                              "--checkpoint.OPTION", "--lr_scheduler.OPTION"}
    named = {aliased(option) for option in named}  # (the short aliases: the options they stand for)
    assert named and all(f"  {option} " in full for option in named), named - set(re.findall(r"--[\w.]+", full))
    assert "--trainer.gradient_clip_val" in full and "--trainer.gradient_clip_val" not in text
    assert "The main advantage is:" not in full  # Lightning's cut-off docstring line is not a group title
    assert help_text(["test", "--help"], capsys) == text  # no checkpoint needed to read it
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["compare", "families", "schedule_study", "batch_size", "valley", "quadratic"])
def test_every_commands_help_names_it_as_run_keeps_its_examples_and_describes_every_option(
        name: str, capsys: pytest.CaptureFixture) -> None:
    module = importlib.import_module(f"lit_momentum.{name}" + (".main" if name == "batch_size" else ""))
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code in (0, None)
    text = capsys.readouterr().out
    assert text.startswith(f"usage: python -m lit_momentum.{name} ")  # not "compare.py"
    assert f"\n    python -m lit_momentum.{name}" in text  # the docstring's examples, one a line, as written
    options = re.findall(r"^  (--[\w-]+)", text, re.M)
    described = re.findall(r"^  (--[\w-]+)[^\n]*?(?:  +\S|\n {20,}\S)", text, re.M)  # help beside it or below
    assert options and described == options, set(options) - set(described)


@pytest.mark.slow
def test_two_runs_with_same_settings_get_two_directories(tiny: list[str], tmp_path: Path) -> None:
    for _ in range(2):
        main([*tiny, "--max_epochs", "1"])
    assert [p.name for p in run_dirs(tmp_path)] == ["version_0", "version_1"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without a GPU")
def test_gpu_without_gpu_is_one_clear_line(tiny: list[str], tmp_path: Path) -> None:
    proc = run_train(*tiny, "--accelerator", "gpu", cwd=tmp_path, check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --trainer.accelerator gpu") and "cpu" in last
    assert not (tmp_path / "lightning_logs").exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_gpu_run_matches_cpu_run_closely(tiny: list[str], tmp_path: Path) -> None:
    for acc in ("cpu", "gpu"):
        run_train(*tiny, "--accelerator", acc, "--trainer.default_root_dir", str(tmp_path / acc), cwd=tmp_path)
    cpu, gpu = (scalars(run_dirs(tmp_path / a)[0])["train/loss"] for a in ("cpu", "gpu"))
    assert max(abs(a - b) for (_, a), (_, b) in zip(cpu, gpu)) < 1e-4
