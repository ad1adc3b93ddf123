"""What the training engine costs: a MnistCNN epoch through `Runner.train()` against
the plain PyTorch-style loop, alternating, on the same data, model init and order.

    python benchmarks/bench_engine.py                 # 3840 samples, batch 64, 5 pairs
    python benchmarks/bench_engine.py --samples 1920 --pairs 3 --threads 1

Both sides train one epoch (no validation) of the same MnistCNN from the same initial
weights with SGD (lr 0.01, momentum 0.9) on MNIST-shaped synthetic images (the compute
does not depend on pixel values). The Runner runs with its default hooks (timer,
JSON-lines logger every 10 iterations, param scheduler, checkpoint at the epoch's end,
as in every real run) into a temporary work dir. Reported: the median epoch time of
each side and the engine's overhead (median of the per-pair ratios - 1). Also: the
RSS after each engine epoch (flat memory), and the metrics file's line count, and the
load average before and after (the figures mean little on a busy machine).

    python benchmarks/bench_engine.py --profile       # the per-iteration overhead

`--profile` makes the engine's own cost visible instead: a tiny MLP (16-16-3, batch 8,
500 iterations, where a step takes well under a millisecond), plain loop vs Runner in
alternating pairs (CPU seconds, medians, per-pair ratios), the hooks' dispatch timed
alone per iteration, and cProfile's view of the engine's functions in one Runner epoch.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import configure_threads  # noqa: E402


def rss_mib():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def plain_loop_epoch(model, loader, optimizer):
    """One epoch of the pytorch/examples loop, the baseline the engine is measured
    against; returns the last batch's loss."""
    from tinygrad_cv.nn import functional as F
    model.train()
    for data, target in loader:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(data), target)
        loss.backward()
        optimizer.step()
    return loss


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=3840)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, choices=(1, 2))
    parser.add_argument("--profile", action="store_true",
                        help="measure the per-iteration overhead on a tiny model instead")
    args = parser.parse_args()
    configure_threads(args.threads)
    print("load average before: %.2f %.2f %.2f" % os.getloadavg())
    if args.profile:
        profile_small(args.pairs)
        print("load average after: %.2f %.2f %.2f" % os.getloadavg())
        return

    import numpy as np

    import tinygrad_cv as tc
    from tinygrad_cv import optim
    from tinygrad_cv.data import DataLoader, TensorDataset
    from tinygrad_cv.engine import Runner
    from tinygrad_cv.models import MnistCNN
    tc.set_num_threads(args.threads)

    rs = np.random.RandomState(0)
    images = rs.rand(args.samples, 1, 28, 28).astype(np.float32)
    labels = rs.randint(0, 10, args.samples)
    dataset = TensorDataset(tc.tensor(images), tc.tensor(labels))
    tc.manual_seed(0)
    initial = {k: v.numpy().copy() for k, v in MnistCNN().state_dict().items()}

    def fresh():
        model = MnistCNN()
        model.load_state_dict(initial)
        return model, DataLoader(dataset, batch_size=args.batch_size, shuffle=True, seed=1)

    def plain_epoch():
        model, loader = fresh()
        optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        start, cpu = time.perf_counter(), time.process_time()
        plain_loop_epoch(model, loader, optimizer).item()
        return time.perf_counter() - start, time.process_time() - cpu

    work = tempfile.mkdtemp(prefix="bench_engine_")
    rss, checkpoint_seconds, hook_seconds = [], [], []

    def engine_epoch():
        model, loader = fresh()
        runner = Runner(model, work, train_dataloader=loader,
                        optimizer=dict(type="SGD", lr=0.01, momentum=0.9), max_epochs=1,
                        seed=0, progress=False)
        original = runner.call_hook

        def timed_call_hook(stage, *hook_args):     # the engine's own code: every hook
            t0 = time.perf_counter()
            original(stage, *hook_args)
            hook_seconds[-1] += time.perf_counter() - t0

        runner.call_hook = timed_call_hook
        hook_seconds.append(0.0)
        start, cpu = time.perf_counter(), time.process_time()
        runner.train()
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        rss.append(rss_mib())
        start = time.perf_counter()
        runner.save_checkpoint(os.path.join(work, "timing.safetensors"), update_last=False)
        checkpoint_seconds.append(time.perf_counter() - start)
        return seconds, cpu_seconds

    try:
        plain_epoch()   # warm-up: Numba compilation, allocator
        engine_epoch()
        plain, engine = [], []
        for i in range(args.pairs):
            first, second = (plain_epoch, engine_epoch) if i % 2 == 0 else (engine_epoch,
                                                                              plain_epoch)
            a, b = first(), second()
            (plain if first is plain_epoch else engine).append(a)
            (engine if first is plain_epoch else plain).append(b)
        lines = sum(1 for _ in open(os.path.join(work, "metrics.jsonl")))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    iters = -(-args.samples // args.batch_size)
    print(f"MnistCNN, {args.samples} samples ({iters} iterations), batch {args.batch_size}, "
          f"{args.threads} thread(s), {args.pairs} alternating pairs")
    for index, label in ((0, "wall"), (1, "CPU")):
        p = [t[index] for t in plain]
        e = [t[index] for t in engine]
        ratios = [x / y for x, y in zip(e, p)]
        print(f"{label:>4}: plain loop median {statistics.median(p):.3f} s, Runner median "
              f"{statistics.median(e):.3f} s; engine overhead {100 * (statistics.median(ratios) - 1):+.2f}% "
              f"(median of per-pair ratios, from {100 * (min(ratios) - 1):+.2f}% to "
              f"{100 * (max(ratios) - 1):+.2f}%)")
    hooks = statistics.median(hook_seconds[1:])
    plain_median = statistics.median(t[0] for t in plain)
    print(f"time inside the hooks (timer, logger, scheduler, checkpoint write) per engine "
          f"epoch: median {hooks:.3f} s = {100 * hooks / plain_median:.2f}% of the plain epoch")
    ckpt = statistics.median(checkpoint_seconds)
    per_iter = statistics.median(t[0] for t in plain) / iters
    full_iters = -(-60000 // args.batch_size)
    print(f"checkpoint write (the engine's one fixed cost per epoch): median {ckpt:.3f} s = "
          f"{100 * ckpt / (per_iter * full_iters):.2f}% of a full 60000-sample epoch at this "
          f"rate ({per_iter * 1000:.0f} ms/iteration, extrapolated)")
    print(f"RSS after each engine run (a fresh model and Runner each; MiB): {[round(r) for r in rss]}")
    print(f"metrics.jsonl lines after {len(engine) + 1} engine epochs: {lines}")
    print("load average after: %.2f %.2f %.2f" % os.getloadavg())


def profile_small(pairs):
    """See the module docstring (--profile)."""
    import cProfile
    import io
    import pstats
    import timeit

    import numpy as np

    import tinygrad_cv as tc
    from tinygrad_cv import nn, optim
    from tinygrad_cv.data import DataLoader, TensorDataset
    from tinygrad_cv.engine import Runner
    tc.set_num_threads(1)
    rs = np.random.RandomState(0)
    dataset = TensorDataset(tc.tensor(rs.randn(4000, 16).astype(np.float32)),
                            tc.tensor(rs.randint(0, 3, 4000)))
    work = tempfile.mkdtemp(prefix="bench_engine_")

    def fresh():
        tc.manual_seed(0)
        return (nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)),
                DataLoader(dataset, batch_size=8, shuffle=True, seed=1))

    def plain():
        model, loader = fresh()
        optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        plain_loop_epoch(model, loader, optimizer)

    def engine():
        model, loader = fresh()
        Runner(model, work, train_dataloader=loader, max_epochs=1, seed=0, progress=False,
               optimizer=dict(type="SGD", lr=0.01, momentum=0.9)).train()

    def cpu(fn):
        start = time.process_time()
        fn()
        return time.process_time() - start

    try:
        plain(), engine()                       # warm-up
        times = {"plain": [], "engine": []}
        for i in range(max(pairs, 5)):
            order = ("plain", "engine") if i % 2 == 0 else ("engine", "plain")
            for name in order:
                times[name].append(cpu(plain if name == "plain" else engine))
        iters = len(dataset) // 8
        ratios = [e / p for e, p in zip(times["engine"], times["plain"])]
        p, e = statistics.median(times["plain"]), statistics.median(times["engine"])
        print(f"tiny MLP, {iters} iterations, batch 8, CPU seconds: plain median {p:.3f} s "
              f"({1e3 * p / iters:.3f} ms/iter), Runner median {e:.3f} s; per-iteration "
              f"difference {1e6 * (e - p) / iters:+.1f} us; per-pair ratio median "
              f"{100 * (statistics.median(ratios) - 1):+.1f}% (from "
              f"{100 * (min(ratios) - 1):+.1f}% to {100 * (max(ratios) - 1):+.1f}%)")
        model, loader = fresh()
        runner = Runner(model, work, train_dataloader=loader, max_epochs=1, seed=0,
                        progress=False, optimizer=dict(type="SGD", lr=0.01, momentum=0.9))
        for hook in runner.hooks:               # ready the hooks as before_run would, but
            hook.before_run(runner)             # log to no file
        logger = next(h for h in runner.hooks if type(h).__name__ == "LoggerHook")
        logger.after_run(runner)
        runner.hooks[0].before_train_epoch(runner)
        outputs, runner.iter = {"loss": tc.tensor(1.0)}, 1

        def hooks_of_one_iteration():
            runner.call_hook("before_train_iter", 0, None)
            runner.call_hook("after_train_iter", 0, None, outputs)
        n = 20000
        best = min(timeit.repeat(hooks_of_one_iteration, number=n, repeat=5)) / n
        print(f"the default hooks' before/after_train_iter per iteration (no log line): "
              f"{1e6 * best:.1f} us")
        profiler = cProfile.Profile()
        profiler.runcall(engine)
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(
            r"engine[/\\]", 12)
        print(text.getvalue())
    finally:
        shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
