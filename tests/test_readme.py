"""The front door cannot rot: every ``python train.py`` and ``python -m lit_momentum.sweep`` command in the README's
(and docs') ``bash`` blocks parses as written, through the real entry point with ``--print_config`` added (the
resolved config is printed, nothing is trained or written). Commands with a placeholder (``...``, ``<...>``) are
skipped; the README's resume command gets a real checkpoint at the path it names.

Bugs these exist to catch: a documented command that no longer parses (a renamed option, a moved config, a
checkpoint path the run does not write).
"""

import re
import shlex
from pathlib import Path

import pytest

from lit_momentum.command import main as train_main
from lit_momentum.sweep import main as sweep_main
from tests.conftest import CONFIGS, ROOT, docs_code

ENTRIES = {"train.py": train_main, "lit_momentum.sweep": sweep_main}


def commands() -> list[tuple[str, str]]:
    """(file, command) for every entry-point command in a ``bash`` block of the Markdown files."""
    found = []
    for md in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in re.findall(r"```bash\n(.*?)```", md.read_text(), re.S):
            for line in block.splitlines():
                for part in line.split("&&"):
                    if re.search(r"(python |torchrun .*?)(train\.py|-m lit_momentum\.sweep)\b", part):
                        found.append((md.name, part.strip()))
    return found


COMMANDS = commands()


def test_the_readme_has_commands_to_check() -> None:
    readme = [c for f, c in COMMANDS if f == "README.md"]
    assert len(readme) >= 8 and any("lit_momentum.sweep" in c for c in readme)
    assert any("--ckpt_path" in c for c in readme)


@pytest.mark.parametrize("where, command", COMMANDS, ids=[f"{f}:{c[:60]}" for f, c in COMMANDS])
def test_each_command_parses_as_written(where: str, command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture) -> None:
    if "..." in command or re.search(r"<\w+>", command):
        pytest.skip("a placeholder, not a command")
    words = shlex.split(command, comments=True)
    entry = "lit_momentum.sweep" if "lit_momentum.sweep" in words else "train.py"
    args = words[next(i for i, w in enumerate(words) if w.endswith(entry)) + 1:]
    (tmp_path / "configs").symlink_to(CONFIGS)
    if "my_nets." in command:  # the docs' own network: their module, where the user keeps it
        (tmp_path / "my_nets.py").write_text(docs_code("networks.md")[0])
        monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)  # relative paths as a user in the repository has them; anything written lands here
    ckpt = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "--ckpt_path"), None)
    if ckpt and entry == "lit_momentum.sweep":  # the sweep it continues: a tiny one, at the very place it names
        sweep_main(["--config", "configs/debug.yaml", "--lr", "0.1", "--max_epochs", "1", "--out",
                    str(Path(ckpt).parent), "--trainer.enable_progress_bar", "false"])
        capsys.readouterr()
    elif ckpt:  # the run the command continues (or tests): a tiny one of its configs, at the very path it names
        run_dir = Path(ckpt).parents[3]
        configs = [a for i, a in enumerate(args) if i and args[i - 1] == "--config"] or ["configs/manual.yaml"]
        train_main([*(w for c in configs for w in ("--config", c)), "--trainer.max_epochs", "1",  # the data as
                    "--trainer.limit_train_batches", "2", "--trainer.limit_val_batches", "1",  # typed: its name
                    "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"])
        assert Path(ckpt).is_file(), f"the README names {ckpt}, the run wrote {sorted(run_dir.rglob('*.ckpt'))}"
        capsys.readouterr()
    if "--merge" in args:  # merges a finished sweep: a tiny one, at the very place the command names
        out = args[args.index("--out") + 1]
        sweep_main(["--config", "configs/debug.yaml", "--lr", "0.1", "--max_epochs", "1", "--out", out,
                    "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"])
        (Path(out) / "summary.csv").unlink()
        capsys.readouterr()
        sweep_main(args)
        assert (Path(out) / "summary.csv").is_file() and "grid points" in capsys.readouterr().out
        return
    if words[0] == "torchrun":  # as torchrun starts it: rank 0 of nproc_per_node
        nproc = words[words.index("--nproc_per_node") + 1]
        for key, value in dict(RANK="0", LOCAL_RANK="0", GROUP_RANK="0", WORLD_SIZE=nproc, LOCAL_WORLD_SIZE=nproc,
                               TORCHELASTIC_RUN_ID="readme",
                               MASTER_ADDR="localhost", MASTER_PORT="29500").items():
            monkeypatch.setenv(key, value)
    helps = any(a == "--help" or a.endswith(".help") for a in args)
    with pytest.raises(SystemExit) as exit_:
        ENTRIES[entry]([*args, *([] if helps or "--print_config" in args else ["--print_config"])])
    out = capsys.readouterr()
    assert exit_.value.code in (0, None), out.err
    assert ("usage:" in out.out) if helps else re.search(r"^model:\n", out.out, re.M), out.out[:500]
