"""Data loading: decoding a folder of JPEGs with worker processes, and batch transforms.

    python benchmarks/bench_data.py [--images 400] [--workers 2] [--repeat 3]

1. A generated folder of JPEGs (photo-like 320x240 images, 4 classes, in a temporary
   folder removed afterwards) read through ImageFolder + Resize/CenterCrop/ToTensor/
   Normalize and the DataLoader, with 0 workers and with `--workers` worker processes:
   seconds per epoch (fastest and median of `--repeat` epochs, the set-ups taking turns)
   and the speed-up. "started each epoch" counts
   starting the workers (persistent_workers=False); "persistent" is an epoch of
   persistent workers already running.
2. The CIFAR training recipe (RandomCrop(32, padding=4) + RandomHorizontalFlip +
   ToTensor + Normalize) on a batch of 128 uint8 images, per-sample draws, in ms.
   With `--resnet20`, also one ResNet-20 training step (batch 128, SGD) for scale.
3. An in-memory TensorDataset with and without workers (the same path: workers are not
   used for it), ms per epoch.

The main process uses one BLAS/Numba thread; each worker uses one.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.common import configure_threads  # noqa: E402

configure_threads(1)

import numpy as np  # noqa: E402

import tinygrad_cv as tc  # noqa: E402
from tinygrad_cv import transforms as T  # noqa: E402
from tinygrad_cv.data import DataLoader, TensorDataset  # noqa: E402
from tinygrad_cv.datasets import ImageFolder  # noqa: E402


def write_jpegs(root, count, seed=0):
    """`count` photo-like JPEGs (smooth colour fields plus noise) in 4 class folders."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:240, 0:320].astype(np.float32)
    for k in range(count):
        folder = os.path.join(root, f"class{k % 4}")
        os.makedirs(folder, exist_ok=True)
        a, b, c = rng.uniform(0.01, 0.05, 3)
        field = np.stack([np.sin(xx * a + k), np.cos(yy * b), np.sin((xx + yy) * c)], -1)
        img = (field * 100 + 128 + rng.normal(0, 12, field.shape)).clip(0, 255)
        Image.fromarray(img.astype(np.uint8)).save(os.path.join(folder, f"{k}.jpg"),
                                                   quality=90)


def resnet20():
    """He et al.'s CIFAR ResNet-20 (3 stages of 3 basic blocks, 16/32/64 channels; 1x1
    convolution shortcuts where the shape changes)."""
    from tinygrad_cv import nn

    class Block(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.b1 = nn.BatchNorm2d(cout)
            self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.b2 = nn.BatchNorm2d(cout)
            self.short = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                        nn.BatchNorm2d(cout))
                          if stride != 1 or cin != cout else nn.Identity())

        def forward(self, x):
            out = self.b1(self.c1(x)).relu()
            return (self.b2(self.c2(out)) + self.short(x)).relu()

    layers, cin = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()], 16
    for cout, stride in ((16, 1), (32, 2), (64, 2)):
        for k in range(3):
            layers.append(Block(cin, cout, stride if k == 0 else 1))
            cin = cout
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
    return nn.Sequential(*layers)


def resnet20_step_seconds(steps=3):
    from tinygrad_cv import optim
    from tinygrad_cv.nn import functional as F
    model = resnet20()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x = tc.randn(128, 3, 32, 32)
    y = tc.Tensor(np.random.default_rng(0).integers(0, 10, 128))
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def process_usage(pid):
    """(user + system CPU seconds, minor page faults) of a process so far (Linux /proc;
    None elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), int(fields[7])


def cpu_accounting(serial_loader, worker_loader, epochs=3):
    """Per epoch (the mean of `epochs`): CPU seconds and page faults of the serial
    loader's process; CPU seconds of the main process and of all workers together, and
    the workers' page faults, for the persistent worker loader. CPU seconds do not
    depend on other load much, unlike wall time. None where /proc is missing."""
    me = os.getpid()
    start, before = time.process_time(), process_usage(me)
    for _ in range(epochs):
        epoch_seconds(serial_loader)
    serial, after = (time.process_time() - start) / epochs, process_usage(me)
    serial_faults = None if before is None else (after[1] - before[1]) / epochs
    pids = worker_loader._pool.pids
    before = [process_usage(p) for p in pids]
    start = time.process_time()
    for _ in range(epochs):
        epoch_seconds(worker_loader)
    main = (time.process_time() - start) / epochs
    after = [process_usage(p) for p in pids]
    if None in before or None in after:
        return serial, serial_faults, main, None, None
    workers = sum(a[0] - b[0] for a, b in zip(after, before)) / epochs
    faults = sum(a[1] - b[1] for a, b in zip(after, before)) / epochs
    return serial, serial_faults, main, workers, faults


def serial_epoch_in_process(root, batch_size):
    """Seconds of one serial epoch over `root` (run in a separate process)."""
    tc.set_num_threads(1)
    ds = ImageFolder(root, transform=make_transform())
    loader = DataLoader(ds, batch_size=batch_size)
    epoch_seconds(loader)
    return epoch_seconds(loader)[0]


def machine_ceiling(root, batch_size):
    """Throughput of two independent serial loaders running at once over one alone: what
    two processes can get from this machine now (2.0 on two idle cores)."""
    import concurrent.futures
    import multiprocessing
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(2, mp_context=ctx) as pool:
        alone = pool.submit(serial_epoch_in_process, root, batch_size).result()
        pair = [pool.submit(serial_epoch_in_process, root, batch_size) for _ in range(2)]
        together = max(f.result() for f in pair)
    return 2 * alone / together


def make_transform():
    return T.Compose([T.Resize(160), T.CenterCrop(128), T.ToTensor(),
                      T.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))])


def epoch_seconds(loader):
    start = time.perf_counter()
    n = 0
    for images, _ in loader:
        n += images.shape[0]
    return time.perf_counter() - start, n


def median_epoch(make_loader, repeat, warm_up):
    """The median seconds of `repeat` epochs of one loader (after a warm-up epoch)."""
    loader = make_loader()
    if warm_up:
        epoch_seconds(loader)
    times = [epoch_seconds(loader)[0] for _ in range(repeat)]
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--resnet20", action="store_true",
                        help="also time a ResNet-20 training step (batch 128)")
    parser.add_argument("--skip-folder", action="store_true", help="skip part 1")
    args = parser.parse_args()
    tc.set_num_threads(1)
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()}")

    if not args.skip_folder:
        folder_benchmark(args)
    recipe_and_memory_benchmarks(args)


def folder_benchmark(args):
    root = tempfile.mkdtemp(prefix="bench_data_")
    try:
        write_jpegs(root, args.images)
        ds = ImageFolder(root, transform=make_transform())

        def loader(workers, persistent=False):
            return DataLoader(ds, batch_size=args.batch_size, num_workers=workers,
                              persistent_workers=persistent)

        # the three set-ups take turns, so that load from other processes hits each alike;
        # the fastest epoch of each is the least disturbed one
        setups = {"serial": loader(0), "cold": None, "warm": loader(args.workers, True)}
        times = {name: [] for name in setups}
        epoch_seconds(setups["serial"])
        epoch_seconds(setups["warm"])
        for _ in range(args.repeat):
            for name in setups:
                times[name].append(epoch_seconds(setups[name] if name != "cold"
                                                 else loader(args.workers))[0])
        best = {k: min(v) for k, v in times.items()}
        median = {k: statistics.median(v) for k, v in times.items()}
        print(f"ImageFolder, {args.images} JPEGs 320x240 -> 3x128x128, batch "
              f"{args.batch_size}, fastest (median) of {args.repeat} epochs:")
        print(f"  0 workers:                          {best['serial']:.3f} "
              f"({median['serial']:.3f}) s/epoch, {args.images / best['serial']:.0f} "
              "images/s")
        for name, label in (("cold", "started each epoch"), ("warm", "persistent")):
            print(f"  {args.workers} workers, {label + ':':21s}{best[name]:.3f} "
                  f"({median[name]:.3f}) s/epoch, speed-up {best['serial'] / best[name]:.2f}x "
                  f"({median['serial'] / median[name]:.2f}x)")
        serial_cpu, serial_faults, main_cpu, workers_cpu, faults = cpu_accounting(
            setups["serial"], setups["warm"])
        if workers_cpu is not None:
            total = main_cpu + workers_cpu
            print(f"  CPU seconds per epoch (mean of 3): {serial_cpu:.2f} in one process; "
                  f"with workers {main_cpu:.2f} (main) + {workers_cpu:.2f} (workers) = "
                  f"{total:.2f} ({total / serial_cpu:.2f}x one process's); on "
                  f"{args.workers} idle cores that bounds the speed-up by "
                  f"{serial_cpu / max(total / args.workers, main_cpu):.2f}x (an estimate)")
            print(f"  minor page faults per epoch: {serial_faults:.0f} in one process, "
                  f"{faults:.0f} in the workers together")
        print(f"  two independent 0-worker loaders at once: "
              f"{machine_ceiling(root, args.batch_size):.2f}x the throughput of one (the "
              "ceiling two processes get from this machine now)")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"  note: load average {load:.2f} during the run: other processes shared "
              "the cores, so the speed-up is a lower bound")



def recipe_and_memory_benchmarks(args):
    recipe = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                        T.Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))])
    batch = np.random.default_rng(0).integers(0, 256, (128, 32, 32, 3), dtype=np.uint8)
    recipe.apply_batch(batch)
    times = []
    for _ in range(50):
        start = time.perf_counter()
        recipe.apply_batch(batch)
        times.append(time.perf_counter() - start)
    recipe_s = statistics.median(times)
    print(f"CIFAR recipe on a batch of 128: {recipe_s * 1e3:.2f} ms (median of 50)")
    if args.resnet20:
        step = resnet20_step_seconds()
        print(f"ResNet-20 training step, batch 128: {step * 1e3:.0f} ms; the recipe is "
              f"{100 * recipe_s / step:.1f}% of it")

    data = TensorDataset(tc.Tensor(np.random.default_rng(0).random((20000, 1, 28, 28),
                                                                     dtype=np.float32)),
                         tc.Tensor(np.zeros(20000, np.int64)))
    for workers in (0, args.workers):
        t = median_epoch(lambda: DataLoader(data, batch_size=128, shuffle=True,
                                            num_workers=workers), 5, warm_up=True)
        print(f"TensorDataset 20000x1x28x28, {workers} workers: {t * 1e3:.1f} ms/epoch")


if __name__ == "__main__":
    main()
