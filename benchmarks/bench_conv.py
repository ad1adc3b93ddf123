"""Time conv2d forward+backward on the MNIST CNN's second layer against PyTorch.

N=64, 32 -> 64 channels, 3x3 kernel, 26x26 input, float32, input/weight/bias all
needing gradients (as inside the CNN). Both frameworks alternate trial by trial with the
same thread count; the upstream gradient is a fixed random tensor. Prints medians in ms.

    python benchmarks/bench_conv.py [--threads 2] [--trials 30]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

# What tinygrad_cv.threads sets when imported before NumPy (see its docstring): OpenBLAS
# workers stop spin-waiting quickly. Set here too, since `import tinygrad_cv` loads NumPy
# before that module. It applies to both frameworks' process alike.
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "20")

import numpy as np  # noqa: E402

import tinygrad_cv as tc  # noqa: E402
from tinygrad_cv.ops.conv import conv2d  # noqa: E402
from tinygrad_cv.threads import set_num_threads  # noqa: E402


def ours_step(x, w, b, grad_out):
    """One forward+backward of our conv2d; grads reset so nothing accumulates."""
    x.grad = w.grad = b.grad = None
    out = conv2d(x, w, b)
    out.backward(grad_out)


def torch_step(torch, x, w, b, grad_out):
    """The same step in PyTorch."""
    x.grad = w.grad = b.grad = None
    out = torch.nn.functional.conv2d(x, w, b)
    out.backward(grad_out)


def timed(fn):
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()

    set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    shapes = dict(x=(args.batch, 32, 26, 26), w=(64, 32, 3, 3), b=(64,),
                  g=(args.batch, 64, 24, 24))
    arrays = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    ours = [tc.Tensor(arrays[k], requires_grad=True) for k in "xwb"]
    ours_grad = tc.Tensor(arrays["g"])

    start = time.perf_counter()
    ours_step(*ours, ours_grad)
    print(f"first call (Numba load/compile included): {(time.perf_counter() - start) * 1e3:.0f} ms")

    try:
        import torch
        torch.set_num_threads(args.threads)
        theirs = [torch.tensor(arrays[k], requires_grad=True) for k in "xwb"]
        theirs_grad = torch.tensor(arrays["g"])
    except ImportError:
        torch = None
        print("PyTorch is not installed: showing only our timings")

    for _ in range(3):   # warm-up
        ours_step(*ours, ours_grad)
        if torch is not None:
            torch_step(torch, *theirs, theirs_grad)
    ours_ms, torch_ms = [], []
    for _ in range(args.trials):
        ours_ms.append(timed(lambda: ours_step(*ours, ours_grad)))
        if torch is not None:
            torch_ms.append(timed(lambda: torch_step(torch, *theirs, theirs_grad)))

    print(f"conv2d fwd+bwd, N={args.batch}, 32->64, 3x3, 26x26, float32, "
          f"{args.threads} threads, median of {args.trials} (min-max):")
    print(f"  tinygrad_cv: {statistics.median(ours_ms):7.2f} ms "
          f"({min(ours_ms):.2f}-{max(ours_ms):.2f})")
    if torch is not None:
        print(f"  PyTorch:     {statistics.median(torch_ms):7.2f} ms "
              f"({min(torch_ms):.2f}-{max(torch_ms):.2f})")
        print(f"  ratio (PyTorch time / ours): "
              f"{statistics.median(torch_ms) / statistics.median(ours_ms):.2f}x")


if __name__ == "__main__":
    main()
