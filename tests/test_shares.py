"""Sweeps of any option and sweeps spread over processes: outer axes (one grid per value), shares (each process its
own units) by --share, a SLURM job array, srun and torchrun, on a real one-node SLURM where there is one; resume,
merge, and the inputs refused.

Bugs these exist to catch: a grid point whose result depends on how the sweep was split (other batches, other
points in its batched model); units trained twice or never; a merge that writes a partial summary as if whole; a
continued multi-grid sweep that retrains, skips or forgets a grid; Lightning's DDP rules applied to independent
shares; an outer axis that silently takes one value; a resubmitted task (another process count) that cannot continue
the sweep; two shares with different row options (threshold, precision, ...) merged into one summary.
"""

import csv
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tensorboard.plugins.hparams import plugin_data_pb2

from lit_momentum.command import main as train_main
from lit_momentum.sweep.main import main as sweep_main
from lit_momentum.sweep.plan import Unit, detect_share, make_units
from tests.conftest import (
    ROOT,
    assert_same_state,
    by_run,
    grid_run,
    kill_after_checkpoint,
    load_ckpt,
    refusal,
    run_dirs,
    run_train,
    scalars,
    spelled,
    sweep_cmd,
    sweep_experiment,
)

GRID = ["--lr", "0.05", "0.5", "--momentum", "0", "0.9"]
BATCHES = ["--data.batch_size", "32", "128"]


def rows(out: Path) -> list[dict[str, str]]:
    with open(out / "summary.csv") as f:
        return list(csv.DictReader(f))


def env_with(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLURM_", "RANK", "WORLD_SIZE", "LOCAL_RANK", "OMP_NUM_THREADS"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**env, **extra}


def together(cmds: list[list[str]], envs: list[dict[str, str]]) -> list[subprocess.CompletedProcess]:
    """Start every command at once, as a launcher does, and wait for all."""
    procs = [subprocess.Popen(c, cwd=ROOT, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c, e in zip(cmds, envs)]
    done = [subprocess.CompletedProcess(p.args, p.wait(timeout=600), *p.communicate()) for p in procs]
    for d in done:
        assert d.returncode == 0, d.stderr[-3000:]
    return done


def test_an_outer_axis_trains_a_grid_per_value_each_point_its_own_run(tiny: list[str], tmp_path: Path) -> None:
    out, epochs = tmp_path / "grid", 20
    sweep_main([*tiny, *GRID, *BATCHES, "--max_epochs", str(epochs), "--out", str(out)])
    table = by_run(rows(out))
    assert len(table) == 8 and {r["data.batch_size"] for r in table.values()} == {"32", "128"}
    for run, batch, lr, m in (("batch_size32_lr0.5_m0.9_seed0", 32, "0.5", "0.9"),
                              ("batch_size128_lr0.05_m0_seed0", 128, "0.05", "0")):
        single = tmp_path / "single" / run
        train_main([*tiny, "--trainer.default_root_dir", str(single), "--max_epochs", str(epochs), "--model.lr", lr,
                    "--model.momentum", m, "--model.momentum_impl", "manual", "--data.batch_size", str(batch)])
        a, b = scalars(run_dirs(single)[0])["train/loss"], scalars(grid_run(out, run))["train/loss"]
        assert [s for s, _ in a] == [s for s, _ in b] and len(a) == epochs  # steps per epoch follow the batch size
        assert max(abs(x - y) for (_, x), (_, y) in zip(a, b)) <= 1e-5, run
        assert float(table[spelled(run)]["final_loss"]) == pytest.approx(b[-1][1], rel=1e-6)
    for figure in ("phase_batch_size32.png", "effective_lr_batch_size128.png", "outer.png"):
        assert (out / figure).stat().st_size > 10_000, figure
    _, root = sweep_experiment(out)
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        root.PluginTagToContent("hparams")["_hparams_/experiment"]).experiment
    names = [h.name for h in experiment.hparam_infos]
    assert names == ["lr", "momentum", "data.batch_size"], names  # what varies (TensorBoard ticks only five)


def test_units_split_combinations_first_then_settings() -> None:
    settings = ["lr0.1_m0", "lr0.1_m0.9", "lr1_m0"]
    names = [u.name for u in make_units({"data.batch_size": [16, 8], "data.dim": [10, 2]}, settings, 4)]
    assert names == ["0_batch_size8_dim2", "1_batch_size8_dim10", "2_batch_size16_dim2", "3_batch_size16_dim10"]
    parts = make_units({}, settings, 2)
    assert [u.settings for u in parts] == [("lr0.1_m0",), ("lr0.1_m0.9", "lr1_m0")]
    assert Unit((("model.net.hidden", [64, 64]),)).prefix == "hidden64-64_"
    with pytest.raises(ValueError, match="4 processes for 3 units"):
        make_units({}, settings, 4)


@pytest.mark.parametrize("env, share", [
    ({}, (0, 1)),
    ({"SLURM_ARRAY_TASK_ID": "5", "SLURM_ARRAY_TASK_MIN": "4", "SLURM_ARRAY_TASK_COUNT": "3"}, (1, 3)),
    ({"RANK": "1", "WORLD_SIZE": "2", "LOCAL_RANK": "1", "MASTER_ADDR": "x", "MASTER_PORT": "1", "GROUP_RANK": "0",
      "TORCHELASTIC_RUN_ID": "r"}, (1, 2)),
    ({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2", "SLURM_NTASKS": "2", "SLURM_PROCID": "1",
      "SLURM_JOB_NAME": "sweep", "SLURM_LOCALID": "1", "SLURM_NODEID": "0"}, (3, 4)),
])
def test_each_process_learns_its_share_from_its_launcher(monkeypatch: pytest.MonkeyPatch, env: dict,
                                                         share: tuple[int, int]) -> None:
    for key in list(os.environ):
        if key.startswith(("SLURM_", "RANK", "WORLD_SIZE", "LOCAL_RANK", "TORCHELASTIC", "GROUP_RANK")):
            monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert detect_share(None) == share
    assert detect_share("2/3") == (1, 3)  # given explicitly, it wins


@pytest.mark.slow
@pytest.mark.parametrize("outer", [BATCHES, []], ids=["two-grids", "one-grid-in-two-parts"])
def test_two_shares_merge_to_the_one_process_sweep_bit_for_bit(tiny: list[str], tmp_path: Path,
                                                               outer: list[str]) -> None:
    """Whole grids to each process, or one grid's settings split between them: the merged summary.csv is the
    one-process sweep's, byte for byte, every unit trained once (by whichever process took it first)."""
    args = [*tiny, *GRID, *outer, "--max_epochs", "4"]
    sweep_main([*args, "--out", str(tmp_path / "one")])  # the reference, in this process
    split = tmp_path / "split"
    done = together([sweep_cmd(*args, "--out", str(split), "--share", f"{k}/2") for k in (1, 2)], [env_with()] * 2)
    assert (split / "summary.csv").read_text() == (tmp_path / "one" / "summary.csv").read_text()
    results = [json.loads(p.read_text()) for p in sorted(split.glob("units/*/result.json"))]
    assert len(results) == 2 and all(r["share"] in ("1/2", "2/2") for r in results)
    # started by hand on one machine: each took its half of the cores (PyTorch's default, all, would oversubscribe)
    assert all(r["threads"] == max(1, len(os.sched_getaffinity(0)) // 2) for r in results)
    assert all(len(r["rows"]) == (4 if outer else 2) for r in results)  # half the points each unit
    assert sum("grid points" in d.stdout for d in done) >= 1  # whoever finished last merged


@pytest.mark.slow
def test_a_slurm_job_array_by_its_variables_a_killed_task_resubmitted_and_a_merge_that_waits(tiny: list[str],
                                                                                             tmp_path: Path) -> None:
    """Task 0 of a 2-task array is killed in the second unit (it takes any unit nobody holds once its own is done);
    --merge then lists what is missing and writes nothing; task 1 resubmitted alone (SLURM then says it is task 0 of
    1) continues the killed unit from its checkpoint and merges: summary.csv is the one-process sweep's."""
    args = [*tiny, *GRID, *BATCHES, "--max_epochs", "20", "--checkpoint.every_n_epochs", "1"]
    out = tmp_path / "array"
    sweep_main([*args, "--out", str(tmp_path / "one")])  # the reference, in this process
    first = env_with(SLURM_ARRAY_TASK_ID="0", SLURM_ARRAY_TASK_COUNT="2", SLURM_ARRAY_TASK_MIN="0")
    kill_after_checkpoint(sweep_cmd(*args, "--out", str(out)), out / "units" / "1_batch_size128" / "last.ckpt", 3,
                          env=first)
    assert (out / "units" / "0_batch_size32" / "result.json").is_file()
    message = refusal(sweep_main, ["--merge", "--out", str(out)])
    assert "1 of 2 units have not finished: 1_batch_size128 (share 2/2)" in message
    assert not (out / "summary.csv").exists()
    again = env_with(SLURM_ARRAY_TASK_ID="1", SLURM_ARRAY_TASK_COUNT="1", SLURM_ARRAY_TASK_MIN="1")  # --array=1
    proc = subprocess.run(sweep_cmd(*args, "--out", str(out)), cwd=ROOT, env=again, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0 and "8 grid points" in proc.stdout, proc.stderr[-2000:]  # it merged
    assert (out / "summary.csv").read_text() == (tmp_path / "one" / "summary.csv").read_text()


@pytest.mark.slow
def test_processes_that_come_later_or_in_other_numbers_continue_the_same_sweep(tiny: list[str],
                                                                               tmp_path: Path) -> None:
    """Share 1 of 4 writes the plan (one grid in four parts) and, its own part done, trains every part nobody holds:
    a part held by another process is skipped, not waited for; two processes then finish it. The units stay the
    plan's, each trained once, merged as the one-process sweep's. A share with another --threshold is refused in
    one line naming it, before it writes anything."""
    # two seeds: parts of two points (a batched product of one point may round in another order: docs/cluster.md)
    args = [*tiny, "--lr", "0.05", "0.5", "--momentum", "0", "0.9", "--seeds", "0", "1", "--max_epochs", "3"]
    sweep_main([*args, "--out", str(tmp_path / "one")])  # the reference, in this process
    out = tmp_path / "queue"
    holder = tmp_path / "hold.py"  # takes the last part's lock once the plan exists, as a process training it would
    holder.write_text("import fcntl, os, sys, time\nout = sys.argv[1]\n"
                      "while not os.path.exists(out + '/plan.json'): time.sleep(0.01)\n"
                      "os.makedirs(out + '/units/grid_part4of4', exist_ok=True)\n"
                      "f = open(out + '/units/grid_part4of4/.lock', 'w')\nfcntl.flock(f, fcntl.LOCK_EX)\n"
                      "print('held', flush=True)\ntime.sleep(600)\n")
    held = subprocess.Popen([sys.executable, str(holder), str(out)], stdout=subprocess.PIPE, text=True)
    try:
        proc = run_train(*args, "--out", str(out), "--share", "1/4", cwd=tmp_path, cmd=sweep_cmd)
        assert held.stdout.readline().strip() == "held"
        assert "3 of 4 finished" in proc.stdout, proc.stdout[-2000:]
    finally:
        held.kill()
    names = [u["name"] for u in json.loads((out / "plan.json").read_text())["units"]]
    assert names == [f"grid_part{k}of4" for k in (1, 2, 3, 4)]
    message = refusal(sweep_main, [*args, "--out", str(out), "--share", "2/2", "--threshold", "0.6"])
    assert "holds another sweep (threshold: 0.69 there, 0.6 here)" in message
    together([sweep_cmd(*args, "--out", str(out), "--share", f"{k}/2") for k in (1, 2)], [env_with()] * 2)
    assert (out / "summary.csv").read_text() == (tmp_path / "one" / "summary.csv").read_text()
    trained = [json.loads((out / "units" / n / "result.json").read_text())["share"] for n in names]
    assert trained[:3] == ["1/4"] * 3 and trained[3] in ("1/2", "2/2")


@pytest.mark.slow
def test_torchrun_gives_each_process_a_share(tiny: list[str], tmp_path: Path) -> None:
    args = [*tiny, *GRID, *BATCHES, "--max_epochs", "3", "--accelerator", "cpu"]
    sweep_main([*args, "--out", str(tmp_path / "one")])  # the reference, in this process
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "lit_momentum.sweep"]
    proc = subprocess.run([*torchrun, *args, "--out", str(tmp_path / "two")], cwd=ROOT, env=env_with(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "two" / "summary.csv").read_text() == (tmp_path / "one" / "summary.csv").read_text()
    shares = [json.loads(p.read_text())["share"] for p in sorted((tmp_path / "two").glob("units/*/result.json"))]
    assert len(shares) == 2 and set(shares) <= {"1/2", "2/2"}  # each unit once, by whichever process took it


@pytest.mark.slow
def test_grids_split_into_parts_name_their_settings_and_sort_in_numeric_order(tiny: list[str], tmp_path: Path) -> None:
    """Four shares for two batch sizes: each grid in two parts (a part named its settings without the batch size's
    prefix, and the grid refused them). One process trains every unit nobody holds and merges; the run directories,
    sorted as text (TensorBoard's order), are in the numeric order of batch size, lr and momentum."""
    out = tmp_path / "parts"
    sweep_main([*tiny, *GRID, "--data.batch_size", "128", "32", "--max_epochs", "1", "--share", "1/4",
                "--out", str(out)])
    assert sorted(p.name for p in (out / "units").iterdir()) == [f"{i}_batch_size{b}_part{k}of2" for i, b in
                                                                ((0, 32), (1, 128)) for k in (1, 2)]
    runs = sorted(p.name for p in out.iterdir() if "_seed" in p.name)
    assert runs == [f"{i}_batch_size{b}_{j}_lr{lr}_m{m}_seed0" for i, b in ((0, 32), (1, 128))
                    for j, (lr, m) in enumerate((("0.05", "0"), ("0.05", "0.9"), ("0.5", "0"), ("0.5", "0.9")))]
    assert len(rows(out)) == 8


@pytest.mark.slow
def test_a_multi_grid_sweep_killed_in_its_second_grid_continues_bit_for_bit(tiny: list[str], tmp_path: Path) -> None:
    args = [*tiny, *GRID, *BATCHES, "--max_epochs", "40", "--checkpoint.every_n_epochs", "2"]
    sweep_main([*args, "--out", str(tmp_path / "straight")])  # the reference, in this process
    crashed = tmp_path / "crashed"
    second = crashed / "units" / "1_batch_size128" / "last.ckpt"
    kill_after_checkpoint(sweep_cmd(*args, "--out", str(crashed)), second, epoch=5)
    assert (crashed / "units" / "0_batch_size32" / "result.json").is_file() and not (crashed / "summary.csv").exists()
    sweep_main([*args, "--out", str(crashed), "--ckpt_path", str(second)])
    for unit in ("0_batch_size32", "1_batch_size128"):
        a, b = (load_ckpt(d / "units" / unit / "last.ckpt") for d in (tmp_path / "straight", crashed))
        assert_same_state(a, b)
    assert (crashed / "summary.csv").read_text() == (tmp_path / "straight" / "summary.csv").read_text()
    for run in ("batch_size128_lr0.5_m0.9_seed0", "batch_size32_lr0.05_m0_seed0"):
        assert scalars(grid_run(crashed, run)) == scalars(grid_run(tmp_path / "straight", run)), run


def slurm() -> bool:
    return shutil.which("sbatch") is not None and subprocess.run(["sinfo", "-h"], capture_output=True).returncode == 0


def submit(cmd: list[str], cwd: Path, env: dict[str, str]) -> str:
    """Submit a batch job; its id."""
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, check=True)
    return done.stdout.split(";")[0].strip()


def wait_for(job: str, timeout: float = 600) -> None:
    """Until no task of ``job`` is queued or running (polled: sbatch --wait polls every few seconds)."""
    deadline = time.time() + timeout
    while subprocess.run(["squeue", "-h", "-j", job], capture_output=True, text=True).stdout.strip():
        assert time.time() < deadline, f"job {job} still running"
        time.sleep(0.2)


def docs_array_script(tmp_path: Path, args: list[str]) -> Path:
    """docs/cluster.md's job-array script as written, with only the sizes changed: 3 tasks of one core, the
    sweep's options the test's; its paths (runs/bs, runs/bs-logs) relative to ``tmp_path``, where it is run."""
    text = (ROOT / "docs" / "cluster.md").read_text()
    script = re.search(r"## A SLURM job array\n\n```bash\n(.*?)```", text, re.S).group(1)
    sizes = {"--array=0-3": "--array=0-2", "--cpus-per-task=4": "--cpus-per-task=1",
             "--time=02:00:00": "--time=00:20:00",
             "--config configs/sweep_mnist1d.yaml --data.batch_size 16 64 256 1024": " ".join(args)}
    for old, new in sizes.items():
        assert old in script, old
        script = script.replace(old, new)
    (tmp_path / "sweep.sh").write_text(script)
    return tmp_path / "sweep.sh"


@pytest.mark.slow
@pytest.mark.skipif(not slurm(), reason="needs a running SLURM (.ci/slurm.sh starts a one-node one)")
def test_the_docs_job_array_with_a_task_cancelled_and_resubmitted_merges_the_one_process_sweep(
        tiny: list[str], tmp_path: Path) -> None:
    """The docs' script and commands on a real SLURM: a 3-task array (one grid per batch size); task 1 cancelled with
    scancel once its unit has a checkpoint; resubmitted as the docs say (sbatch --array=1 sweep.sh); summary.csv is
    the one-process sweep's byte for byte, and the logs (beside --out) hold plain progress lines."""
    args = [*tiny, *GRID, "--data.batch_size", "32", "64", "128", "--max_epochs", "12", "--checkpoint.every_n_epochs",
            "1", "--trainer.enable_progress_bar", "true"]
    sweep_main([*args, "--out", str(tmp_path / "one")])  # the reference, in this process
    script = docs_array_script(tmp_path, args)
    (tmp_path / "runs" / "bs-logs").mkdir(parents=True)  # the docs' mkdir -p runs/bs-logs
    env = env_with()
    job = submit(["sbatch", "--parsable", str(script)], tmp_path, env)
    ckpt = tmp_path / "runs" / "bs" / "units" / "1_batch_size64" / "last.ckpt"
    deadline = time.time() + 300
    while not (ckpt.is_file() and load_ckpt(ckpt)["epoch"] >= 2) and time.time() < deadline:
        time.sleep(0.05)
    subprocess.run(["scancel", f"{job}_1"], check=True)
    wait_for(job)
    again = submit(["sbatch", "--parsable", "--array=1", str(script)], tmp_path, env)
    wait_for(again)
    logs = "\n".join(p.read_text() for p in sorted((tmp_path / "runs" / "bs-logs").glob("*.log")))
    resubmitted = (tmp_path / "runs" / "bs-logs" / f"{again}_1.log").read_text()
    assert "Traceback" not in resubmitted and "error" not in resubmitted, resubmitted[-3000:]
    assert "CANCELLED" in logs  # the task was really cancelled mid-run
    out = tmp_path / "runs" / "bs"
    assert (out / "summary.csv").read_text() == (tmp_path / "one" / "summary.csv").read_text(), logs[-3000:]
    assert "\r" not in logs and "epoch 12/12" in logs  # a batch job's log: plain progress lines, no bar
    threads = [json.loads(p.read_text())["threads"] for p in sorted(out.glob("units/*/result.json"))]
    assert threads == [1, 1, 1]  # each task used the one core SLURM gave it (--cpus-per-task=1), not all


@pytest.mark.slow
@pytest.mark.skipif(not slurm(), reason="needs a running SLURM (.ci/slurm.sh starts a one-node one)")
def test_under_srun_lightnings_rules_are_one_line_and_shares_are_exempt(tiny: list[str], tmp_path: Path) -> None:
    proc = subprocess.run(["srun", "-n", "2", *train_cmd_args(tiny, tmp_path)], cwd=ROOT, env=env_with(),
                          capture_output=True, text=True, timeout=300)
    lines = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and lines
    assert all(line.startswith("error: SLURM: You set `--ntasks=2`") for line in lines)
    assert not (tmp_path / "lightning_logs").exists()
    proc = subprocess.run(["srun", "-n", "2", *sweep_cmd(*tiny, *GRID, *BATCHES, "--max_epochs", "2", "--out",
                                                         str(tmp_path / "srun"))],
                          cwd=ROOT, env=env_with(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(rows(tmp_path / "srun")) == 8


def train_cmd_args(tiny: list[str], tmp_path: Path) -> list[str]:
    return [sys.executable, str(ROOT / "train.py"), *tiny, "--max_epochs", "1", "--trainer.default_root_dir",
            str(tmp_path)]


BAD = [
    (["--data.batch_size", "32", "32"], "--data.batch_size", "more than once"),
    (["--model.lr", "0.1", "0.2"], "--model.lr", "--lr V V"),
    (["--trainer.max_epochs", "3", "5"], "--trainer.max_epochs", "only data and model options"),
    (["--share", "3/2"], "--share", "1 <= I <= K"),
    (["--share", "1/3"], "3 processes for 2 units", "at most 2"),
    (["--devices", "2"], "--trainer.devices 2", "torchrun --nproc_per_node 2"),
    (["--data.bogus", "1", "2"], "--data.bogus", "has no such option"),
]


@pytest.mark.parametrize("args, option, allowed", BAD, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_sweep_input_is_one_line_and_writes_nothing(tiny: list[str], tmp_path: Path, args: list[str],
                                                       option: str, allowed: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    message = refusal(sweep_main, [*tiny, "--lr", "0.1", "--momentum", "0", "0.9", "--out", str(tmp_path / "out"),
                                   *args])
    assert option in message and allowed in message, message
    assert not (tmp_path / "out").exists() and not (tmp_path / "lightning_logs").exists()


def test_a_plan_being_written_is_not_another_sweep(tiny: list[str], tmp_path: Path) -> None:
    """A process that starts while another writes the plan sees only the plan's temporary file: not a reason to
    refuse the directory (it is written whole, then linked into place)."""
    out = tmp_path / "out"
    out.mkdir()
    (out / ".plan.json.4242").write_text("{")  # another process's plan, half written
    sweep_main([*tiny, "--lr", "0.1", "--max_epochs", "1", "--out", str(out)])
    assert (out / "summary.csv").is_file()


def test_two_processes_with_one_pid_on_two_hosts_each_know_whose_plan_is_there(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Process A (pid 4242 on host a) is about to link its plan when process B (pid 4242 on host b, the same shared
    directory) writes and links its own: A must learn that the plan is B's, and neither may fail. With the
    temporary file named by the pid alone B overwrote A's, A's link failed and its cleanup met no file."""
    import lit_momentum.sweep.plan as plan_module

    out, host, real_link = tmp_path / "out", {"name": "a"}, os.link
    monkeypatch.setattr(plan_module.os, "getpid", lambda: 4242)
    monkeypatch.setattr(plan_module.socket, "gethostname", lambda: host["name"])

    def link_after_b(src: str, dst: str) -> None:  # B runs its whole claim between A's write and A's link
        monkeypatch.setattr(plan_module.os, "link", real_link)
        host["name"] = "b"
        assert plan_module.claim_plan(out, {"by": "b"})
        real_link(src, dst)

    monkeypatch.setattr(plan_module.os, "link", link_after_b)
    assert not plan_module.claim_plan(out, {"by": "a"})
    assert json.loads((out / "plan.json").read_text()) == {"by": "b"} and sorted(os.listdir(out)) == ["plan.json"]


@pytest.mark.slow
def test_a_process_of_the_same_sweep_arriving_as_the_plan_appears_joins(tiny: list[str], tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process of this sweep writes the plan right after this one looked for it: the directory then holds
    the plan, which is this sweep's, not "other files". (Looking for the plan, then checking the directory, refused
    it.)"""
    main_module = importlib.import_module("lit_momentum.sweep.main")  # (the package's main names the function)
    args = [*tiny, "--lr", "0.1", "--max_epochs", "1"]
    sweep_main([*args, "--out", str(tmp_path / "first")])
    out, real_read = tmp_path / "out", main_module.read_plan
    out.mkdir()

    def plan_appears(where: Path) -> dict | None:  # the other process's plan lands just after this look
        monkeypatch.setattr(main_module, "read_plan", real_read)
        shutil.copy(tmp_path / "first" / "plan.json", where / "plan.json")
        return None

    monkeypatch.setattr(main_module, "read_plan", plan_appears)
    sweep_main([*args, "--out", str(out)])
    assert (out / "summary.csv").read_text() == (tmp_path / "first" / "summary.csv").read_text()


@pytest.mark.slow
def test_a_sweep_trained_further_merges_only_units_trained_to_its_new_budget(tiny: list[str], tmp_path: Path) -> None:
    """Two grids trained for 1 epoch, then continued to 3 while another process holds the second grid: this process
    trains the first to 3 and must not merge it with the second's 1-epoch rows; --merge names the unit and why."""
    from lit_momentum.sweep.plan import locked

    out = tmp_path / "out"
    args = [*tiny, "--lr", "0.1", *BATCHES, "--out", str(out)]
    sweep_main([*args, "--max_epochs", "1"])
    before = (out / "summary.csv").read_text()
    units = sorted(p.name for p in (out / "units").iterdir())
    with locked(out / "units" / units[1] / ".lock") as mine:  # another process trains it right now
        assert mine
        sweep_main([*args, "--max_epochs", "3", "--ckpt_path", str(out / "units" / units[0] / "last.ckpt")])
    assert json.loads((out / "units" / units[0] / "result.json").read_text())["budget"][0] == 3
    assert (out / "summary.csv").read_text() == before  # not rewritten with 3 epochs beside 1
    message = refusal(sweep_main, ["--merge", "--out", str(out)])
    assert f"1 of 2 units have not finished: {units[1]}" in message
    assert "trained to 1 epochs, the sweep to 3 epochs" in message


def test_a_plan_is_never_read_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process reading plan.json while another writes it (first, or trained further) finds no plan or a whole one,
    never half of one. (Planted: plan.json written in place.)"""
    from lit_momentum.sweep.plan import claim_plan, read_plan, write_plan

    out, seen, real = tmp_path / "out", [], Path.write_text

    def halfway(self: Path, text: str, *args: object, **kwargs: object) -> int:
        real(self, text[: len(text) // 2])
        seen.append(read_plan(out))  # another process reads right now
        return real(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", halfway)
    first, second = {"units": list(range(50)), "budget": [1, -1]}, {"units": list(range(50)), "budget": [3, -1]}
    assert claim_plan(out, first)
    write_plan(out, second)
    monkeypatch.undo()
    assert seen == [None, first] and read_plan(out) == second


@pytest.mark.slow
def test_a_unit_finished_while_this_process_waited_for_its_lock_is_not_trained_again(
        tiny: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process finishes the unit between this one's first look and its lock: the result is read again under
    the lock, and the unit is not trained twice."""
    from contextlib import contextmanager

    main_module = importlib.import_module("lit_momentum.sweep.main")  # (the package's main names the function)
    args = [*tiny, "--lr", "0.1", "--max_epochs", "1"]
    sweep_main([*args, "--out", str(tmp_path / "done")])
    real_locked = main_module.locked

    @contextmanager
    def finished_meanwhile(path: Path, wait: bool = False):  # noqa: ANN202
        shutil.copy(tmp_path / "done" / "result.json", path.parent / "result.json")
        with real_locked(path, wait) as mine:
            yield mine

    monkeypatch.setattr(main_module, "locked", finished_meanwhile)
    monkeypatch.setattr(main_module, "build", lambda *a, **k: pytest.fail("a finished unit was trained again"))
    sweep_main([*args, "--out", str(tmp_path / "out")])
    assert (tmp_path / "out" / "summary.csv").read_text() == (tmp_path / "done" / "summary.csv").read_text()


def test_another_sweep_into_the_same_directory_is_refused(tiny: list[str], tmp_path: Path) -> None:
    out = tmp_path / "out"
    sweep_main([*tiny, "--lr", "0.1", *BATCHES, "--max_epochs", "1", "--out", str(out)])
    before = sorted(out.rglob("*"))
    message = refusal(sweep_main, [*tiny, "--lr", "0.2", *BATCHES, "--max_epochs", "1", "--out", str(out)])
    assert "holds another sweep (model.lr: [0.1] there, [0.2] here)" in message
    message = refusal(sweep_main, [*tiny, "--lr", "0.1", *BATCHES, "--max_epochs", "2", "--out", str(out)])
    assert "trained to 1 epochs" in message and "--ckpt_path" in message
    steps = tmp_path / "steps"  # a budget in steps is said in steps
    sweep_main([*tiny, "--lr", "0.1", *BATCHES, "--max_epochs", "1", "--trainer.max_steps", "3", "--out", str(steps)])
    message = refusal(sweep_main, [*tiny, "--lr", "0.1", *BATCHES, "--max_epochs", "1", "--trainer.max_steps", "5",
                                   "--out", str(steps)])
    assert "trained to 1 epochs or 3 steps;" in message
    for option, value in (("accumulate_grad_batches", "2"), ("gradient_clip_algorithm", "value"),
                          ("overfit_batches", "2"), ("limit_train_batches", "2")):  # each changes the steps
        message = refusal(sweep_main, [*tiny, "--lr", "0.1", *BATCHES, "--max_epochs", "1", f"--trainer.{option}",
                                       value, "--out", str(out)])
        assert f"holds another sweep (trainer.{option}: " in message, message
    assert sorted(out.rglob("*")) == before


def test_several_processes_need_one_out_and_the_help_leads_with_the_sweeps_options(
        tiny: list[str], tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert "give them its directory, --out DIR" in refusal(sweep_main, [*tiny, *BATCHES, "--share", "1/2"])
    sweep_main(["--help"])
    text = capsys.readouterr().out
    head = "\n".join(text.splitlines()[:40])
    assert all(f"{o} " in head for o in ("--lr V [V ...]", "--seeds", "--out", "--threshold", "--bound", "--share",
                                         "--merge", "--data.OPTION")), head
    assert len(text.splitlines()) < 60 and "python train.py --help" in text
