"""Where the MNIST CNN's second convolution spends its time: each step of conv2d's
im2col + GEMM path (forward and backward) timed alone, on the layer's real shapes.

    python benchmarks/conv_breakdown.py [--batch 64] [--reps 15] [--threads 2]

It calls the same kernels and GEMMs as `tinygrad_cv/ops/conv.py`, on whole-batch
buffers with BLAS's own threads (the op itself works in cache-sized chunks, its batch
split across the threads: tinygrad_cv/parallel.py), and prints the median time of
each step and the GEMMs' GFLOP/s. Used to show that the three GEMMs are most of a
training step's conv2 time (see the README's performance section).
"""
from __future__ import annotations

import argparse

import common  # puts the repository on sys.path; thread setup before NumPy loads


def median_ms(fn, reps):
    """Median wall time of `fn()` in ms, after 3 untimed calls."""
    return common.median_call_seconds(fn, reps) * 1e3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    common.configure_threads(args.threads)      # before NumPy, Numba and BLAS load
    import numpy as np

    import tinygrad_cv
    from tinygrad_cv.kernels import cpu
    from tinygrad_cv.ops.conv import conv_geometry
    tinygrad_cv.set_num_threads(args.threads)
    n, c, size, o = args.batch, 32, 26, 64
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, size, size)).astype(np.float32)
    weight = (rng.standard_normal((o, c * 9)) * 0.1).astype(np.float32)
    bias = rng.standard_normal(o).astype(np.float32)
    geom = conv_geometry(x.shape, (o, c, 3, 3), (o,), 1, 0, 1, 1)
    k, positions = c * 9, geom.positions
    cols = np.empty((n, k, positions), np.float32)
    out = np.empty((n, o, positions), np.float32)
    grad = rng.standard_normal((n, o, positions)).astype(np.float32)
    per_sample_dw = np.empty((n, o, k), np.float32)
    weight_t = np.ascontiguousarray(weight.T)
    dcols = np.empty((n, k, positions), np.float32)
    dx = np.empty_like(x)
    planes_x = x.reshape(n * c, size, size)
    kernel_args = geom.kernel_args()
    gemm_flop = 2 * n * o * k * positions

    steps = [
        ("im2col", False, lambda: cpu.im2col(planes_x, cols.reshape(n * c, 9, positions),
                                             *kernel_args)),
        ("forward GEMM  W @ cols", True,
         lambda: np.matmul(weight, cols, out=out)),
        ("bias + ReLU", False, lambda: cpu.bias_relu(out.reshape(n * o, positions), bias, True)),
        ("ReLU backward", False, lambda: cpu.relu_backward_inplace(out.reshape(-1),
                                                                   grad.reshape(-1))),
        ("bias gradient", False, lambda: grad.sum(axis=2).sum(axis=0)),
        ("dW GEMM  dY @ cols^T", True,
         lambda: np.matmul(grad, cols.transpose(0, 2, 1), out=per_sample_dw)),
        ("dW sum over samples", False, lambda: per_sample_dw.sum(axis=0)),
        ("dcols GEMM  W^T @ dY", True, lambda: np.matmul(weight_t, grad, out=dcols)),
        ("col2im", False, lambda: cpu.col2im(dcols.reshape(n * c, 9, positions),
                                             dx.reshape(n * c, size, size), *kernel_args)),
    ]
    print(f"MNIST CNN conv2 (32->64, 3x3, 26x26 input), batch {n}, median of {args.reps}")
    total = gemm_total = 0.0
    for name, is_gemm, fn in steps:
        ms = median_ms(fn, args.reps)
        total += ms
        rate = f"  {gemm_flop / ms / 1e6:6.1f} GFLOP/s" if is_gemm else ""
        gemm_total += ms if is_gemm else 0.0
        print(f"  {name:<24} {ms:7.2f} ms{rate}")
    print(f"  {'total':<24} {total:7.2f} ms (GEMMs {gemm_total:.2f} ms, "
          f"{100 * gemm_total / total:.0f}%)")


if __name__ == "__main__":
    main()
