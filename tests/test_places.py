"""Output places, in every entry point: a directory that is a file, or that cannot be created or written (a
read-only file system, a full disk, a place nobody may write), is refused with one line before anything runs.

The read-only and full places are real: small tmpfs mounts (root only; skipped where mounting is not allowed).
Bugs these exist to catch: a traceback from deep inside TensorBoard, matplotlib or the checkpoint writer after the
work was done; a half-written run left behind.
"""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from lit_momentum import compare, quadratic, valley
from lit_momentum.batch_size.main import main as study_main
from lit_momentum.command import main as train_main
from lit_momentum.sweep.main import main as sweep_main
from tests.conftest import CONFIGS, refusal

DEBUG = ["--config", str(CONFIGS / "debug.yaml")]
ENTRIES = {  # entry point -> its main, options that make it quick, the option that names its output place
    "train.py": (train_main, DEBUG, "--trainer.default_root_dir"),
    "sweep": (sweep_main, [*DEBUG, "--lr", "0.1"], "--out"),
    "compare": (compare.main, [*DEBUG, "--variants", "sgd"], "--out"),
    "quadratic": (quadratic.main, ["--kappa", "10"], "--out"),
    "valley": (valley.main, ["--no-gif"], "--out"),
    "batch_size": (study_main, ["--quick", "--sources", "nqm"], "--out"),
}


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """A file, a read-only file system and a full one (a 1 MiB tmpfs, filled)."""
    root = tmp_path_factory.mktemp("places")
    (root / "a_file").write_text("not a directory")
    found = {"file": root / "a_file", "inside a file": root / "a_file" / "out"}
    mounted = []
    for name, options in (("read-only", "ro,size=1m"), ("full", "size=1m")):
        point = root / name
        point.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(point)],
                          capture_output=True).returncode == 0:
            mounted.append(point)
            found[name] = point / "out"
    if root / "full" in mounted:
        with open(root / "full" / "filler", "wb") as f:
            try:
                f.write(bytes(2 * 2**20))
            except OSError:  # no space left: as intended
                pass
    yield found
    for point in mounted:
        subprocess.run(["umount", str(point)], capture_output=True)


@pytest.mark.parametrize("entry", list(ENTRIES))
@pytest.mark.parametrize("case, reason", [("file", "is a file"), ("inside a file", "a file, not a directory"),
                                          ("read-only", "Read-only file system"),
                                          ("full", "No space left on device")])
def test_a_bad_output_place_is_one_line_before_anything_runs(places: dict[str, Path], entry: str, case: str,
                                                             reason: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    if case not in places:
        pytest.skip("mounting a tmpfs is not allowed here")
    main, args, option = ENTRIES[entry]
    place = places[case]
    monkeypatch.chdir(tmp_path)
    before = sorted(place.parent.rglob("*")) if place.parent.is_dir() else None
    message = refusal(main, [*args, option, str(place)])
    assert message.startswith(f"error: {option} {place}") and reason in message, message
    if before is not None:
        assert sorted(place.parent.rglob("*")) == before, "something was written"
    assert not list(tmp_path.iterdir()), "something was written in the working directory"
