"""tinygrad_cv.distributed and DistributedDataParallel, run for real: each test launches
`mpiexec -n 2 python tests/test_distributed.py SCENARIO OUTDIR` on loopback (this file is
also the ranks' script) and checks what the ranks wrote or how the job ended.

Skipped, with the reason, where mpi4py or mpiexec (the `dist` extra) is missing.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
STEPS, GLOBAL_BATCH, WORLD = 20, 32, 2


def find_mpiexec():
    """mpiexec on PATH, else the one the mpich wheel puts next to this Python."""
    found = shutil.which("mpiexec")
    if found:
        return found
    for folder in (Path(sys.executable).parent, Path(sysconfig.get_path("scripts"))):
        candidate = folder / "mpiexec"
        if candidate.exists():
            return str(candidate)
    return None


MPIEXEC = find_mpiexec()
HAVE_MPI4PY = importlib.util.find_spec("mpi4py") is not None
requires_mpi = pytest.mark.skipif(
    not (HAVE_MPI4PY and MPIEXEC),
    reason="needs mpi4py and mpiexec (pip install -e '.[dist]': mpi4py and the mpich wheel)")


def child_env():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get(
        "PYTHONPATH", "")]).rstrip(os.pathsep))
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "NUMBA_NUM_THREADS"):
        env[name] = "1"
    return env


def launch(scenario, out_dir, ranks=WORLD, limit_s=90):
    """Run this file as `ranks` MPI ranks; returns (returncode, stdout+stderr, seconds)."""
    start = time.monotonic()
    result = subprocess.run([MPIEXEC, "-n", str(ranks), sys.executable, __file__, scenario,
                             str(out_dir)], env=child_env(), capture_output=True, text=True,
                            timeout=limit_s, cwd=ROOT)
    return result.returncode, result.stdout + result.stderr, time.monotonic() - start


# =============================================================================== the ranks
# Everything below `worker_` runs inside the MPI ranks.

def worker_model(seed):
    import tinygrad_cv as tc
    from tinygrad_cv import nn
    from tinygrad_cv.nn import functional as F

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)
            self.fc = nn.Linear(36, 10)
            self.register_buffer("shift", tc.zeros(1))

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv(x + self.shift)), 2)
            return self.fc(tc.flatten(x, 1))

    tc.manual_seed(seed)
    return Net()


def worker_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((STEPS * GLOBAL_BATCH, 1, 8, 8)).astype(np.float32)
    y = rng.integers(0, 10, STEPS * GLOBAL_BATCH)
    return x, y


def worker_train(model, sampler, batch_size, epochs=2):
    """SGD on the worker data through `sampler`, `epochs` epochs (reshuffled each)."""
    import tinygrad_cv as tc
    from tinygrad_cv.data import DataLoader
    from tinygrad_cv.nn import functional as F

    opt = tc.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    loader = DataLoader(sampler.dataset, batch_size=batch_size, sampler=sampler)
    steps = 0
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        for x, y in loader:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()
            steps += 1
    return steps


def worker_weights(model, prefix):
    return {prefix + name: t.numpy().copy() for name, t in model.state_dict().items()}


def worker_gathered(tensor):
    """Every rank's copy of `tensor`, as a list of arrays."""
    import tinygrad_cv as tc
    import tinygrad_cv.distributed as dist

    outs = [tc.zeros_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(outs, tensor)
    return [o.numpy() for o in outs]


def worker_error(fn):
    try:
        fn()
    except Exception as exc:   # the message is what the test checks
        return f"{type(exc).__name__}: {exc}"
    return "no error"


def scenario_correctness(out_dir):
    import tinygrad_cv as tc
    import tinygrad_cv.distributed as dist
    from tinygrad_cv import nn
    from tinygrad_cv.data import DistributedSampler, TensorDataset
    from tinygrad_cv.nn import functional as F
    from tinygrad_cv.nn.parallel import DistributedDataParallel as DDP

    dist.init_process_group(backend="mpi", timeout=60)
    rank, world = dist.get_rank(), dist.get_world_size()
    arrays, facts = {}, {"rank": rank, "world": world, "main": dist.is_main_process()}

    # --- collectives
    t = tc.tensor([1.0, -2.0, 3.0]) * (rank + 1)
    for op in ("SUM", "AVG", "MAX", "MIN"):
        r = t.clone()
        dist.all_reduce(r, op=getattr(dist.ReduceOp, op))
        arrays[f"reduce_{op}"] = r.numpy()
    b = tc.full((2, 2), float(rank))
    dist.broadcast(b, src=1)
    arrays["broadcast"] = b.numpy()
    arrays["gather"] = np.stack(worker_gathered(tc.arange(3) + 10 * rank))
    dist.barrier()
    work = dist.all_reduce(t.clone(), async_op=True)
    facts["async_waits"] = work.wait() and work.is_completed()
    square = tc.tensor([[1.0, 2.0], [3.0, 4.0]]) * (rank + 1)
    view = square.T                                   # not C-contiguous: reduced via a copy
    dist.all_reduce(view)
    arrays["reduced_view"] = view.numpy()
    half = (tc.tensor([0.5, 1.5]) * (rank + 1)).half()
    dist.all_reduce(half, op=dist.ReduceOp.AVG)
    arrays["reduced_half"] = half.numpy()
    facts["half_dtype"] = str(half.dtype)
    facts["bad_op"] = worker_error(lambda: dist.all_reduce(t, op="sum"))
    facts["bad_bool"] = worker_error(lambda: dist.all_reduce(tc.ones(2).bool()))
    facts["bad_avg"] = worker_error(lambda: dist.all_reduce(tc.tensor([1, 2]),
                                                            op=dist.ReduceOp.AVG))
    facts["bad_src"] = worker_error(lambda: dist.broadcast(t, src=world))
    facts["bad_list"] = worker_error(lambda: dist.all_gather([t], t))

    # --- 2 ranks x batch 16 against 1 process x batch 32, same data order
    x, y = worker_data()
    model = worker_model(seed=100 + rank)          # different on purpose: DDP broadcasts
    model.shift.data[...] = float(rank)             # a buffer rank 0 must impose
    ddp = DDP(model, bucket_cap_mb=0.0005)          # ~500 bytes: several buckets
    facts["buckets"] = len(ddp.reducer.buckets)
    arrays["shift_after_wrap"] = model.shift.numpy().copy()
    # Each rank its half of every shuffled global batch (DistributedSampler), against one
    # process with the whole batch in the same order: both samplers shuffle with
    # seed + epoch, rank r takes positions r, r + 2, ...
    dataset = TensorDataset(tc.tensor(x[:STEPS * GLOBAL_BATCH // 2]),
                            tc.tensor(y[:STEPS * GLOBAL_BATCH // 2]))
    facts["ddp_steps"] = worker_train(ddp, DistributedSampler(dataset, shuffle=True, seed=1),
                                      GLOBAL_BATCH // world)
    arrays.update(worker_weights(model, "ddp."))
    facts["state_dict_keys"] = list(ddp.state_dict())
    facts["stats"] = ddp.communication_stats()
    if rank == 0:
        reference = worker_model(seed=100)
        facts["reference_steps"] = worker_train(
            reference, DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=True,
                                          seed=1), GLOBAL_BATCH)
        arrays.update(worker_weights(reference, "ref."))

    # --- buffers broadcast at each (training) forward
    model.shift.data[...] = 5.0 + rank
    with tc.no_grad():
        ddp(tc.tensor(x[:2]))
    arrays["shift_after_forward"] = model.shift.numpy().copy()

    quiet = worker_model(seed=5)
    quiet_ddp = DDP(quiet, broadcast_buffers=False)
    quiet.shift.data[...] = 7.0 + rank
    quiet_ddp(tc.tensor(x[:2]))
    arrays["shift_not_broadcast"] = quiet.shift.numpy().copy()

    # --- gradient accumulation with no_sync equals one big batch
    acc_model = worker_model(seed=7)
    acc = DDP(acc_model)
    micro, k = 8, 3
    chunks = [(x[i * micro * world:(i + 1) * micro * world],
               y[i * micro * world:(i + 1) * micro * world]) for i in range(k)]
    for i, (cx, cy) in enumerate(chunks):
        loss = F.cross_entropy(acc(tc.tensor(cx[rank::world])), tc.tensor(cy[rank::world]))
        if i < k - 1:
            with acc.no_sync():
                loss.backward()
        else:
            loss.backward()
        if i == 0:   # inside no_sync the ranks' gradients are their own
            arrays["nosync_fc_grad"] = np.stack(worker_gathered(acc_model.fc.weight.grad))
    for name, p in acc_model.named_parameters():
        arrays[f"acc.{name}"] = p.grad.numpy() / k
    if rank == 0:
        big = worker_model(seed=7)
        bx = np.concatenate([c[0] for c in chunks])
        by = np.concatenate([c[1] for c in chunks])
        F.cross_entropy(big(tc.tensor(bx)), tc.tensor(by)).backward()
        for name, p in big.named_parameters():
            arrays[f"big.{name}"] = p.grad.numpy()

    # --- unused parameters
    class TwoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.used = nn.Linear(4, 2)
            self.unused = nn.Linear(4, 2)

        def forward(self, x):
            return self.used(x)

    tc.manual_seed(3)
    heads = DDP(TwoHeads(), find_unused_parameters=True)
    heads(tc.ones(3, 4) * (rank + 1)).sum().backward()
    facts["unused_grad_is_none"] = heads.module.unused.weight.grad is None
    arrays["used_grad"] = heads.module.used.weight.grad.numpy()
    class EitherHead(TwoHeads):
        def forward(self, x, use_second):
            return self.unused(x) if use_second else self.used(x)

    tc.manual_seed(3)
    either = DDP(EitherHead(), find_unused_parameters=True)
    either(tc.ones(3, 4), rank == 0).sum().backward()   # `unused` only on rank 0
    arrays["half_used_grad"] = either.module.unused.weight.grad.numpy()
    arrays["other_half_used_grad"] = either.module.used.weight.grad.numpy()

    class Pair(TwoHeads):
        def forward(self, x):
            return self.used(x), self.unused(x)

    tc.manual_seed(3)
    pair = DDP(Pair())
    first, second = pair(tc.ones(3, 4))
    first.sum().backward(retain_graph=True)  # marks `used` ready; the bucket waits
    facts["twice_error"] = worker_error(lambda: (first + second).sum().backward())

    strict = DDP(TwoHeads())
    strict(tc.ones(3, 4)).sum().backward()
    facts["unused_error"] = worker_error(lambda: strict(tc.ones(3, 4)))

    # --- mismatched models are detected at wrap time and named
    tc.manual_seed(0)
    other = nn.Sequential(nn.Linear(4, 3 if rank == 0 else 5), nn.ReLU())
    facts["mismatch"] = worker_error(lambda: DDP(other))
    facts["double_wrap"] = worker_error(lambda: DDP(model))

    np.savez(os.path.join(out_dir, f"rank{rank}.npz"), **arrays)
    with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as f:
        json.dump(facts, f)
    dist.destroy_process_group()


def scenario_fault(out_dir, kind):
    """Rank 1 fails (`kind`) in the middle of DDP training; rank 0 carries on."""
    import tinygrad_cv as tc
    import tinygrad_cv.distributed as dist
    from tinygrad_cv.nn import functional as F
    from tinygrad_cv.nn.parallel import DistributedDataParallel as DDP

    dist.init_process_group(backend="mpi", timeout=3 if kind == "stuck" else 60)
    rank = dist.get_rank()
    ddp = DDP(worker_model(seed=0))
    x, y = worker_data()
    for step in range(STEPS):
        if rank == 1 and step == 2:
            if kind == "raise":
                raise ValueError("rank 1 failed on purpose")
            if kind == "exit":
                os._exit(1)
            if kind == "stuck":
                time.sleep(120)
        F.cross_entropy(ddp(tc.tensor(x[:16])), tc.tensor(y[:16])).backward()
    print("rank", rank, "finished training", flush=True)


def scenario_mismatch(out_dir):
    """Rank 1 builds a different model: wrapping raises on every rank, uncaught."""
    import tinygrad_cv as tc
    import tinygrad_cv.distributed as dist
    from tinygrad_cv import nn
    from tinygrad_cv.nn.parallel import DistributedDataParallel as DDP

    dist.init_process_group()
    tc.manual_seed(0)
    DDP(nn.Sequential(nn.Linear(4, 8), nn.Linear(8, 2 + dist.get_rank())))
    print("wrapped", flush=True)


def scenario_before_init(out_dir):
    """Rank 1 never calls init_process_group (stuck before it); rank 0 waits in MPI_Init.
    (A rank that *exits* before init is sometimes cleaned up by mpiexec first: only a
    stuck one proves the watchdog.)"""
    import tinygrad_cv.distributed as dist

    launcher_rank = os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK"))
    if launcher_rank == "1":
        print("rank 1 is stuck before init_process_group", flush=True)
        time.sleep(120)
        return
    dist.init_process_group(timeout=3)
    dist.barrier()
    print("rank 0 passed the barrier", flush=True)


def worker_main(argv):
    scenario, out_dir = argv[0], argv[1]
    if scenario == "correctness":
        scenario_correctness(out_dir)
    elif scenario == "before_init":
        scenario_before_init(out_dir)
    elif scenario == "mismatch":
        scenario_mismatch(out_dir)
    else:
        scenario_fault(out_dir, scenario)


# =============================================================================== the tests

@pytest.fixture(scope="module")
def correctness(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp")
    rc, output, _ = launch("correctness", out)
    assert rc == 0, output
    ranks = [np.load(out / f"rank{r}.npz") for r in range(WORLD)]
    facts = [json.loads((out / f"rank{r}.json").read_text()) for r in range(WORLD)]
    return ranks, facts


@requires_mpi
def test_collectives_in_place_on_every_rank(correctness):
    ranks, facts = correctness
    base = np.array([1.0, -2.0, 3.0], np.float32)
    expected = {"SUM": 3 * base, "AVG": 1.5 * base, "MAX": np.maximum(base, 2 * base),
                "MIN": np.minimum(base, 2 * base)}
    for arrays in ranks:
        for op, value in expected.items():
            np.testing.assert_allclose(arrays[f"reduce_{op}"], value, err_msg=op)
        np.testing.assert_array_equal(arrays["broadcast"], np.ones((2, 2)))
        np.testing.assert_array_equal(arrays["gather"], [[0, 1, 2], [10, 11, 12]])
    assert [f["rank"] for f in facts] == [0, 1] and {f["world"] for f in facts} == {2}
    assert [f["main"] for f in facts] == [True, False]
    for arrays, f in zip(ranks, facts):
        assert f["async_waits"] is True
        np.testing.assert_array_equal(arrays["reduced_view"], [[3.0, 9.0], [6.0, 12.0]])
        np.testing.assert_array_equal(arrays["reduced_half"], [0.75, 2.25])
        assert f["half_dtype"] == "float16"
    assert "ReduceOp" in facts[0]["bad_op"]
    assert "src must be a rank in 0..1" in facts[0]["bad_src"]
    assert "bool tensors cannot be reduced" in facts[0]["bad_bool"]
    assert "AVG needs a floating tensor, got int64" in facts[0]["bad_avg"]
    assert "world_size=2" in facts[0]["bad_list"]


@requires_mpi
def test_two_ranks_of_16_train_the_weights_of_one_process_of_32(correctness):
    """20 SGD steps: 2 epochs of 10 over 320 samples, DistributedSampler reshuffling."""
    ranks, facts = correctness
    assert facts[0]["buckets"] >= 3             # the tiny cap really made several buckets
    keys = [k for k in ranks[0].files if k.startswith("ddp.")]
    assert keys
    for key in keys:
        # the replicas are bit-identical (same averaged gradients, same steps) ...
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key], err_msg=key)
        # ... and equal to one process on the whole batch (float32 summation order aside)
        np.testing.assert_allclose(ranks[0][key], ranks[0]["ref." + key[4:]], rtol=2e-4,
                                   atol=2e-5, err_msg=key)
    reference_start = ranks[0]["ref.fc.weight"]
    assert not np.allclose(reference_start, 0)
    stats = facts[0]["stats"]
    assert facts[0]["ddp_steps"] == facts[1]["ddp_steps"] == facts[0]["reference_steps"]
    assert stats["iterations"] == STEPS
    # allreduces started during backward, before the last gradient existed (overlap)
    assert stats["early_starts"] >= STEPS * (facts[0]["buckets"] - 1)


@requires_mpi
def test_rank_zero_buffers_are_broadcast_at_wrap_and_forward(correctness):
    ranks, _ = correctness
    for arrays in ranks:
        np.testing.assert_array_equal(arrays["shift_after_wrap"], [0.0])
        # under no_grad after a training forward torch still syncs buffers (as here)
        np.testing.assert_array_equal(arrays["shift_after_forward"], [5.0])
    # broadcast_buffers=False: each rank keeps its own
    assert [float(a["shift_not_broadcast"][0]) for a in ranks] == [7.0, 8.0]


@requires_mpi
def test_state_dict_keys_carry_the_module_prefix_as_torch(correctness):
    _, facts = correctness
    # a module's own buffers come before its children's entries, as in torch
    assert facts[0]["state_dict_keys"] == ["module.shift", "module.conv.weight",
                                           "module.conv.bias", "module.fc.weight",
                                           "module.fc.bias"]


@requires_mpi
def test_no_sync_accumulation_equals_one_big_batch(correctness):
    ranks, _ = correctness
    nosync = ranks[0]["nosync_fc_grad"]
    assert not np.allclose(nosync[0], nosync[1])      # not averaged inside no_sync
    for key in [k for k in ranks[0].files if k.startswith("acc.")]:
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key], err_msg=key)
        np.testing.assert_allclose(ranks[0][key], ranks[0]["big." + key[4:]], rtol=1e-4,
                                   atol=1e-6, err_msg=key)


@requires_mpi
def test_unused_parameters(correctness):
    ranks, facts = correctness
    assert facts[0]["unused_grad_is_none"] and facts[1]["unused_grad_is_none"]
    # d(sum(W x + b))/dW = sum over rows of x: rank r feeds x = r + 1, averaged: 1.5 * 3
    for arrays in ranks:
        np.testing.assert_allclose(arrays["used_grad"], np.full((2, 4), 4.5))
    # a head used on one rank only: its gradient (3 per weight) averaged with the other
    # rank's zeros, on both ranks
    for arrays in ranks:
        np.testing.assert_allclose(arrays["half_used_grad"], np.full((2, 4), 1.5))
        np.testing.assert_allclose(arrays["other_half_used_grad"], np.full((2, 4), 1.5))
    assert "'used.weight' got its gradient twice" in facts[0]["twice_error"]
    assert "unused.weight" in facts[0]["unused_error"]
    assert "find_unused_parameters=True" in facts[0]["unused_error"]


@requires_mpi
def test_mismatched_models_are_named_at_wrap_time(correctness):
    _, facts = correctness
    for f in facts:
        assert f["mismatch"].startswith("RuntimeError: DistributedDataParallel expects the "
                                        "same model on every rank")
        assert ("parameter '0.weight' has shape (5, 4) and dtype float32 on rank 1 but "
                "shape (3, 4) and dtype float32 on rank 0") in f["mismatch"]
        assert "already belongs" in f["double_wrap"]


@requires_mpi
def test_uncaught_mismatch_ends_the_job_with_the_message(tmp_path):
    rc, output, seconds = launch("mismatch", tmp_path)
    assert rc != 0
    assert "parameter '1.weight' has shape (3, 8) and dtype float32 on rank 1" in output
    assert "wrapped" not in output


@requires_mpi
def test_a_rank_that_raises_aborts_the_others(tmp_path):
    rc, output, seconds = launch("raise", tmp_path)
    assert rc != 0, output
    assert seconds < 60
    assert "ValueError: rank 1 failed on purpose" in output
    assert "rank 1 of 2 failed with an uncaught exception; aborting all ranks" in output
    assert "finished training" not in output


@requires_mpi
def test_a_rank_that_dies_ends_the_job(tmp_path):
    rc, output, seconds = launch("exit", tmp_path)
    assert rc != 0, output
    assert seconds < 60
    assert "finished training" not in output


@requires_mpi
def test_a_stuck_rank_makes_the_others_time_out_with_a_message(tmp_path):
    rc, output, seconds = launch("stuck", tmp_path)
    assert rc != 0, output
    assert seconds < 60
    assert "DistributedTimeoutError" in output
    # rank 0 (waiting for the stuck rank 1); under heavy load a slow start could make
    # either rank the first to time out, and the job must end all the same
    assert re.search(r"rank [01] of 2 waited 3 s for the other ranks", output), output
    assert re.search(r"rank [01] of 2 failed with an uncaught exception; aborting all "
                     r"ranks", output), output


@requires_mpi
def test_a_rank_that_never_calls_init_does_not_leave_the_others_in_mpi_init(tmp_path):
    rc, output, seconds = launch("before_init", tmp_path)
    assert rc != 0, output
    assert seconds < 60
    assert "rank 1 is stuck before init_process_group" in output
    assert "Timeout (0:00:03)!" in output                   # rank 0's watchdog fired
    assert "_join_every_rank_in_mpi_init" in output
    assert "passed the barrier" not in output


@pytest.mark.skipif(not HAVE_MPI4PY, reason="needs mpi4py (pip install -e '.[dist]')")
def test_a_single_process_without_mpiexec_is_a_world_of_one(tmp_path):
    code = textwrap.dedent("""
        import tinygrad_cv as tc
        import tinygrad_cv.distributed as dist
        from tinygrad_cv import nn
        assert dist.is_main_process() and not dist.is_initialized()
        dist.init_process_group("mpi")
        assert (dist.get_rank(), dist.get_world_size()) == (0, 1)
        model = nn.Linear(3, 2)
        ddp = nn.parallel.DistributedDataParallel(model)
        ddp(tc.ones(4, 3)).sum().backward()
        assert (model.weight.grad.numpy() == 4).all(), model.weight.grad
        dist.destroy_process_group()
        print("ok")
    """)
    env = child_env()
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


def test_a_layer_gradient_is_accumulated_before_earlier_layers_run_backward():
    """What makes DDP's overlap possible: the engine accumulates (and runs post-hooks of)
    a leaf right after its consumer's backward, not at the end of the whole backward."""
    import tinygrad_cv as tc
    from tinygrad_cv import nn

    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(),
                          nn.Linear(4, 2))
    seen = []
    for name, p in model.named_parameters():
        p._node().post_hooks.append(
            lambda leaf, name=name: seen.append((name, model[0].weight.grad is None)))
    model(tc.randn(5, 3)).sum().backward()
    assert [name for name, _ in seen] == ["4.weight", "4.bias", "2.weight", "2.bias",
                                          "0.weight", "0.bias"]
    assert [first_pending for _, first_pending in seen] == [True] * 4 + [False] * 2


def test_importing_tinygrad_cv_never_imports_mpi4py(tmp_path):
    """A poisoned `mpi4py` on the path proves nothing imports it until a group opens."""
    (tmp_path / "mpi4py").mkdir()
    (tmp_path / "mpi4py" / "__init__.py").write_text("raise RuntimeError('mpi4py imported')\n")
    code = textwrap.dedent("""
        import tinygrad_cv
        import tinygrad_cv.distributed as dist
        from tinygrad_cv.nn.parallel import DistributedDataParallel
        assert not dist.is_initialized() and dist.is_main_process()
        try:
            dist.get_rank()
        except ValueError as exc:
            assert "init_process_group" in str(exc)
        else:
            raise AssertionError("get_rank without a group must raise")
        try:
            DistributedDataParallel(tinygrad_cv.nn.Linear(2, 2))
        except RuntimeError as exc:
            assert "init_process_group" in str(exc)
        else:
            raise AssertionError("DDP without a group must raise")
        try:
            dist.init_process_group("nccl")
        except ValueError as exc:
            assert "over MPI only" in str(exc)
        else:
            raise AssertionError("an unknown backend must raise")
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    worker_main(sys.argv[1:])
