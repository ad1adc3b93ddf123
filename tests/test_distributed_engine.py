"""The training engine under MPI: `mpiexec -n 2 python -m tinygrad_cv train CONFIG
--launcher mpi --work-dir ...` on a tiny synthetic config, run for real, plus the
launcher's pieces that need no MPI (loader splitting, refusals) in this process.

The config (written by `tiny_config`) is a 6-16-3 MLP with dropout on 41 samples that
draw fresh noise from tinygrad_cv's generator when read (so every rank's own random
streams shape the weights), gradients accumulated over 2 batches (DDP's no_sync), 21
validation samples (an odd count: a padded split would count one twice), and three test
hooks driven by environment variables:
- TC_TEST_PROBE_DIR: after the run, each rank writes its weights and a few draws from
  its random streams there, and rank 1 the list of the file writes it attempted under
  TC_TEST_WATCH (recorded by an audit hook from the moment the config is read);
- TC_TEST_PAUSE_AT=K: rank 1 prints "READY <pid>" after iteration K and waits for a
  stop signal (so the test can SIGTERM that one rank);
- TC_TEST_FAIL_AT=K: rank 1 raises a UserError after iteration K.

The mpiexec tests are skipped where mpi4py or mpiexec is missing (pip install -e
'.[dist]'); CI installs the extra.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.test_distributed import MPIEXEC, ROOT, child_env, requires_mpi

TINY_CONFIG = '''
import json
import os
import sys
import time

import numpy as np

import tinygrad_cv as tc
from tinygrad_cv import nn
from tinygrad_cv.data import Dataset
from tinygrad_cv.engine import DATASETS, HOOKS, MODELS, Hook
from tinygrad_cv.errors import UserError

RANK = int(os.environ.get("PMI_RANK", "0"))
WATCH = os.environ.get("TC_TEST_WATCH")
PROBE_DIR = os.environ.get("TC_TEST_PROBE_DIR")
WRITES = []
WRITE_EVENTS = ("os.rename", "os.replace", "os.remove", "os.rmdir", "os.mkdir",
                "os.truncate", "os.link", "os.symlink", "shutil.rmtree", "os.chmod")


def _audit(event, args):
    if event == "open":
        path, mode, flags = args
        writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
        paths = [path] if writing else []
    elif event in WRITE_EVENTS:
        paths = [a for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))]
    else:
        return
    for p in paths:
        p = os.fsdecode(os.fspath(p))
        if WATCH and os.path.abspath(p).startswith(WATCH) and not (
                PROBE_DIR and os.path.abspath(p).startswith(PROBE_DIR)):
            WRITES.append([event, p])


if RANK != 0 and WATCH and not getattr(sys, "_tc_test_audit", False):
    sys._tc_test_audit = True
    sys.addaudithook(_audit)


@DATASETS.register_module(force=True)
class NoisyDistData(Dataset):
    def __init__(self, n=41, seed=0, noise=0.1):
        rs = np.random.RandomState(seed)
        self.x = rs.randn(n, 6).astype(np.float32)
        self.y = rs.randint(0, 3, n)
        self.noise = noise

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        x = tc.tensor(self.x[i])
        if self.noise:
            x = x + self.noise * tc.randn(6)
        return x, int(self.y[i])


@MODELS.register_module(force=True)
class DropoutNet(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))


@HOOKS.register_module(force=True)
class RankTestHook(Hook):
    priority = "LOWEST"

    def after_train_iter(self, runner, batch_idx, data_batch, outputs):
        if RANK != 1:
            return
        if runner.iter == int(os.environ.get("TC_TEST_FAIL_AT", "-1")):
            raise UserError("rank 1 cannot go on (a test failure)")
        if runner.iter == int(os.environ.get("TC_TEST_PAUSE_AT", "-1")):
            print(f"READY {os.getpid()}", flush=True)
            deadline = time.monotonic() + 60
            while runner._stop_signal is None and time.monotonic() < deadline:
                time.sleep(0.02)

    def after_run(self, runner):
        if not PROBE_DIR:
            return
        draws = {"tinygrad_cv": tc.rand(4).numpy(), "numpy": np.random.rand(4)}
        tc.save({"state_dict": runner.model.state_dict(), "draws": draws},
                os.path.join(PROBE_DIR, f"rank{RANK}.safetensors"))
        if RANK != 0:
            with open(os.path.join(PROBE_DIR, f"writes{RANK}.json"), "w") as fh:
                json.dump(WRITES, fh)


model = dict(type="DropoutNet")
train_dataloader = dict(dataset=dict(type="NoisyDistData"), batch_size=8, shuffle=True)
val_dataloader = dict(dataset=dict(type="NoisyDistData", n=21, seed=1, noise=0.0),
                      batch_size=4)
val_evaluator = [dict(type="Accuracy"), dict(type="ConfusionMatrix", num_classes=3)]
optimizer = dict(type="SGD", lr=0.1, momentum=0.9)
param_scheduler = dict(type="StepLR", step_size=1, gamma=0.7)
default_hooks = dict(checkpoint=dict(type="CheckpointHook", save_best="auto"),
                     logger=dict(type="LoggerHook", interval=1, progress=False))
custom_hooks = [dict(type="RankTestHook")]
accumulative_counts = 2     # epoch of 3 batches: accumulate, step; step (the last)
max_epochs = 2
seed = 0
'''

ITERS_PER_EPOCH = 3     # 41 samples padded to 42, 21 per rank, batches of 8, 8, 5


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("config") / "tiny_dist.py"
    path.write_text(TINY_CONFIG)
    return path


def train_command(config, work_dir, *extra):
    return [MPIEXEC, "-n", "2", sys.executable, "-m", "tinygrad_cv", "train", str(config),
            "--launcher", "mpi", "--work-dir", str(work_dir), *extra]


def run_env(root, probe_dir=None, **variables):
    env = child_env()
    env["TC_TEST_WATCH"] = str(root)
    if probe_dir is not None:
        probe_dir.mkdir(exist_ok=True)
        env["TC_TEST_PROBE_DIR"] = str(probe_dir)
    env.update({k: str(v) for k, v in variables.items()})
    return env


def train(config, work_dir, probe_dir=None, *extra, limit_s=120, **variables):
    """(returncode, output, seconds) of one 2-rank `train CONFIG --launcher mpi`."""
    start = time.monotonic()
    result = subprocess.run(train_command(config, work_dir, *extra), capture_output=True,
                            text=True, timeout=limit_s, cwd=ROOT,
                            env=run_env(work_dir.parent, probe_dir, **variables))
    return result.returncode, result.stdout + result.stderr, time.monotonic() - start


def load(path):
    import tinygrad_cv as tc
    return tc.load(str(path))


def arrays(state):
    return {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v) for k, v in state.items()}


def assert_same(a, b):
    a, b = arrays(a), arrays(b)
    assert a.keys() == b.keys()
    for key in a:
        assert np.array_equal(a[key], b[key]), key


def metrics_lines(work_dir):
    return [json.loads(line) for line in (work_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tiny_config, tmp_path_factory):
    """An uninterrupted 2-epoch, 2-rank run."""
    root = tmp_path_factory.mktemp("reference")
    work, probes = root / "work", root / "probes"
    rc, output, _ = train(tiny_config, work, probes)
    assert rc == 0, output
    return work, probes, output


# ============================================================================ under mpiexec

@requires_mpi
def test_two_ranks_train_identical_weights_and_only_rank_zero_writes(reference):
    work, probes, output = reference
    assert output.count("epoch 2/2") == 1 and output.count("done: 2 epoch(s)") == 1, output
    names = sorted(os.listdir(work))
    assert [n for n in names if not n.startswith("best_")] == [
        "config.json", "epoch_1.safetensors", "epoch_2.safetensors", "last_checkpoint",
        "metrics.jsonl"], names
    assert len([n for n in names if n.startswith("best_accuracy_top1_epoch_")]) == 1, names
    lines = metrics_lines(work)
    train_lines = [line for line in lines if line["mode"] == "train"]
    assert [line["iter"] for line in train_lines] == list(range(1, 2 * ITERS_PER_EPOCH + 1))
    assert all(np.isfinite(line["loss"]) for line in train_lines)
    assert [line["epoch"] for line in lines if line["mode"] == "val"] == [1, 2]
    # rank 1 attempted no write at all in the work dir (audited from config load on)
    assert json.loads((probes / "writes1.json").read_text()) == []
    ranks = [load(probes / f"rank{r}.safetensors") for r in range(2)]
    final = load(work / "epoch_2.safetensors")
    assert_same(ranks[0]["state_dict"], ranks[1]["state_dict"])
    assert_same(ranks[0]["state_dict"], final["state_dict"])      # no "module." prefix
    first = load(work / "epoch_1.safetensors")["state_dict"]
    assert not np.array_equal(first["0.weight"].numpy(), final["state_dict"]["0.weight"].numpy())
    assert final["meta"]["world_size"] == 2 and set(final["ranks"]) == {"1"}
    draws = [arrays(ranks[r]["draws"]) for r in range(2)]     # each rank's own streams
    for stream in ("tinygrad_cv", "numpy"):
        assert not np.array_equal(draws[0][stream], draws[1][stream])


@requires_mpi
def test_val_metrics_are_those_of_one_process_on_the_whole_val_set(reference, tiny_config,
                                                                   tmp_path):
    from tinygrad_cv.engine import Config, Runner
    work, _, _ = reference
    last_val = [line for line in metrics_lines(work) if line["mode"] == "val"][-1]
    assert np.asarray(last_val["confusion_matrix"]).sum() == 21     # each sample once
    cfg = Config.fromfile(str(tiny_config))
    cfg["test_dataloader"] = cfg["val_dataloader"]
    for key in ("train_dataloader", "val_dataloader", "custom_hooks"):
        cfg.pop(key)
    runner = Runner.from_cfg(cfg, work_dir=str(tmp_path / "single"),
                             load_from=str(work / "epoch_2.safetensors"))
    single = runner.test()
    assert single["accuracy/top1"] == last_val["accuracy/top1"]
    assert np.array_equal(single["confusion_matrix"], np.asarray(last_val["confusion_matrix"]))
    assert single["loss"] == pytest.approx(last_val["loss"], rel=1e-6)


@requires_mpi
def test_a_rank_that_fails_ends_the_job_with_its_message(tiny_config, tmp_path):
    rc, output, seconds = train(tiny_config, tmp_path / "work", TC_TEST_FAIL_AT=2)
    assert rc == 2, output
    assert "rank 1 of 2: error: rank 1 cannot go on (a test failure); aborting all ranks" \
        in output, output
    assert "epoch 1/2" not in output
    assert seconds < 60


@pytest.mark.slow
@requires_mpi
def test_resumed_after_epoch_one_ends_bit_identical(reference, tiny_config, tmp_path):
    ref_work, ref_probes, _ = reference
    work, probes = tmp_path / "work", tmp_path / "probes"
    rc, output, _ = train(tiny_config, work, None, "--cfg-options", "max_epochs=1")
    assert rc == 0, output
    rc, output, _ = train(tiny_config, work, probes, "--resume", "--cfg-options",
                          "max_epochs=2")
    assert rc == 0 and output.count("resumed from") == 1, output
    assert_same(load(work / "epoch_2.safetensors")["state_dict"],
                load(ref_work / "epoch_2.safetensors")["state_dict"])
    for r in range(2):       # every rank's weights and random streams continued exactly
        mine, theirs = load(probes / f"rank{r}.safetensors"), load(ref_probes / f"rank{r}.safetensors")
        assert_same(mine["state_dict"], theirs["state_dict"])
        assert_same(mine["draws"], theirs["draws"])


@pytest.mark.slow
@requires_mpi
def test_sigterm_to_one_rank_stops_both_after_the_same_step_and_resumes_exactly(
        reference, tiny_config, tmp_path):
    ref_work, ref_probes, _ = reference
    work, probes = tmp_path / "work", tmp_path / "probes"
    pause_at = ITERS_PER_EPOCH + 2     # mid-epoch 2, mid-accumulation: own gradients kept
    proc = subprocess.Popen(train_command(tiny_config, work), cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env=run_env(tmp_path, TC_TEST_PAUSE_AT=pause_at))
    try:
        pid = None
        for line in proc.stdout:
            if line.startswith("READY"):
                pid = int(line.split()[1])
                break
        assert pid is not None, "rank 1 never paused"
        os.kill(pid, signal.SIGTERM)                     # rank 1 only
        output = proc.stdout.read()
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert rc == 128 + signal.SIGTERM, output
    assert output.count(f"interrupted by SIGTERM at epoch 2, iteration {pause_at}") == 2, output
    assert f"resume with: mpiexec -n 2 {os.path.basename(sys.executable)} -m tinygrad_cv " \
           f"train {tiny_config} --work-dir {work} --resume --launcher mpi" in output, output
    assert (work / f"iter_{pause_at}.safetensors").exists()
    rc, output, _ = train(tiny_config, work, probes, "--resume")
    assert rc == 0 and f"(epoch 1, iter {pause_at})" in output, output
    assert_same(load(work / "epoch_2.safetensors")["state_dict"],
                load(ref_work / "epoch_2.safetensors")["state_dict"])
    for r in range(2):
        mine, theirs = load(probes / f"rank{r}.safetensors"), load(ref_probes / f"rank{r}.safetensors")
        assert_same(mine["draws"], theirs["draws"])


# ============================================================================ in this process

def test_launcher_mpi_without_mpiexec_is_a_clear_error(monkeypatch):
    from tinygrad_cv.distributed import engine
    from tinygrad_cv.errors import UserError
    for name in engine.LAUNCHED_BY_MPIEXEC:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(UserError, match="launcher='mpi'.*mpiexec -n N python -m tinygrad_cv "
                                        "train CONFIG --launcher mpi"):
        engine.engine_process()


def test_loaders_are_split_so_every_sample_counts_once():
    import tinygrad_cv as tc
    from tinygrad_cv.data import DataLoader, TensorDataset
    from tinygrad_cv.engine.distributed_run import eval_loader_for_rank, train_loader_for_rank
    data = TensorDataset(tc.arange(21).float(), tc.arange(21))
    val = DataLoader(data, batch_size=4)
    seen = []
    for rank in range(3):
        shard = eval_loader_for_rank(val, rank, 3, "val")
        assert shard.batch_size == 4
        seen += [int(v) for _, y in shard for v in y.numpy()]
    assert sorted(seen) == list(range(21))               # unpadded: each sample once
    train = DataLoader(data, batch_size=4, shuffle=True, drop_last=True)
    parts = [train_loader_for_rank(train, rank, 2, seed=7) for rank in range(2)]
    for loader in parts:
        loader.sampler.set_epoch(1)
        assert loader.batch_size == 4 and loader.drop_last and len(loader) == 2
    epoch = [[int(v) for _, y in loader for v in y.numpy()] for loader in parts]
    assert not set(epoch[0]) & set(epoch[1])             # 11 each of the padded 22: disjoint
    parts[0].sampler.set_epoch(2)
    assert [int(v) for _, y in parts[0] for v in y.numpy()] != epoch[0]   # reshuffled


def test_a_loader_with_its_own_sampler_is_refused_by_name():
    import tinygrad_cv as tc
    from tinygrad_cv.data import DataLoader, TensorDataset, WeightedRandomSampler
    from tinygrad_cv.engine.distributed_run import train_loader_for_rank
    from tinygrad_cv.errors import UserError
    data = TensorDataset(tc.arange(8).float(), tc.arange(8))
    loader = DataLoader(data, batch_size=2, sampler=WeightedRandomSampler([1.0] * 8, 8))
    with pytest.raises(UserError, match="train loader has its own WeightedRandomSampler"):
        train_loader_for_rank(loader, 0, 2, seed=0)


@requires_mpi
def test_a_two_rank_checkpoint_is_not_resumed_by_one_process(reference, tiny_config, tmp_path):
    from tinygrad_cv.engine import Config, Runner
    from tinygrad_cv.engine.checkpoint import CheckpointMismatchError
    work, _, _ = reference
    cfg = Config.fromfile(str(tiny_config))
    cfg.pop("custom_hooks")
    runner = Runner.from_cfg(cfg, work_dir=str(tmp_path / "single"),
                             resume=str(work / "epoch_1.safetensors"))
    with pytest.raises(CheckpointMismatchError, match=r"world_size \(2 process\(es\) saved vs "
                                                      r"1 now"):
        runner.train()
