"""Data loading: decoding a folder of JPEGs with worker processes, and batch transforms.

    python benchmarks/bench_data.py [--images 400] [--workers 2] [--repeat 3]

1. A generated folder of JPEGs (photo-like 320x240 images, 4 classes, in a temporary
   folder removed afterwards) read through ImageFolder + Resize/CenterCrop/ToTensor/
   Normalize and the DataLoader, with 0 workers and with `--workers` worker processes:
   seconds per epoch (median of `--repeat` epochs) and the speed-up. "cold" counts
   starting the workers (each epoch, persistent_workers=False); "warm" is an epoch of
   persistent workers already running.
2. The CIFAR training recipe (RandomCrop(32, padding=4) + RandomHorizontalFlip +
   ToTensor + Normalize) on a batch of 128 uint8 images, per-sample draws, in ms.
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


def epoch_seconds(loader):
    start = time.perf_counter()
    n = 0
    for images, _ in loader:
        n += images.shape[0]
    return time.perf_counter() - start, n


def median_epoch(make_loader, repeat, warm_up):
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
    args = parser.parse_args()
    tc.set_num_threads(1)
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()}")

    root = tempfile.mkdtemp(prefix="bench_data_")
    try:
        write_jpegs(root, args.images)
        transform = T.Compose([T.Resize(160), T.CenterCrop(128), T.ToTensor(),
                               T.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))])
        ds = ImageFolder(root, transform=transform)

        def loader(workers, persistent=False):
            return DataLoader(ds, batch_size=args.batch_size, num_workers=workers,
                              persistent_workers=persistent)

        serial = median_epoch(lambda: loader(0), args.repeat, warm_up=True)
        cold = median_epoch(lambda: loader(args.workers), args.repeat, warm_up=True)
        warm = median_epoch(lambda: loader(args.workers, True), args.repeat, warm_up=True)
        print(f"ImageFolder, {args.images} JPEGs 320x240 -> 3x128x128, batch "
              f"{args.batch_size}:")
        print(f"  0 workers:                  {serial:.3f} s/epoch "
              f"({args.images / serial:.0f} images/s)")
        print(f"  {args.workers} workers (started each epoch): {cold:.3f} s/epoch, "
              f"speed-up {serial / cold:.2f}x")
        print(f"  {args.workers} workers (persistent):         {warm:.3f} s/epoch, "
              f"speed-up {serial / warm:.2f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    load = os.getloadavg()[0]
    if load > 0.5:
        print(f"  note: load average {load:.2f} during the run: other processes shared "
              "the cores, so the speed-up is a lower bound")

    recipe = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                        T.Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26))])
    batch = np.random.default_rng(0).integers(0, 256, (128, 32, 32, 3), dtype=np.uint8)
    recipe.apply_batch(batch)
    times = []
    for _ in range(50):
        start = time.perf_counter()
        recipe.apply_batch(batch)
        times.append(time.perf_counter() - start)
    print(f"CIFAR recipe on a batch of 128: {statistics.median(times) * 1e3:.2f} ms "
          "(median of 50)")

    data = TensorDataset(tc.Tensor(np.random.default_rng(0).random((20000, 1, 28, 28),
                                                                     dtype=np.float32)),
                         tc.Tensor(np.zeros(20000, np.int64)))
    for workers in (0, args.workers):
        t = median_epoch(lambda: DataLoader(data, batch_size=128, shuffle=True,
                                            num_workers=workers), 5, warm_up=True)
        print(f"TensorDataset 20000x1x28x28, {workers} workers: {t * 1e3:.1f} ms/epoch")


if __name__ == "__main__":
    main()
