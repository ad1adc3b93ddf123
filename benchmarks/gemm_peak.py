"""How close a training step gets to the machine's float32 GEMM peak, ours and PyTorch's.

The machine's peak is measured, not looked up: the best rate of large square float32
GEMMs at `--threads` threads, through NumPy's BLAS (OpenBLAS, what our engine calls) and
through PyTorch's (MKL/oneDNN); the higher of the two is the peak. A model's work is the
multiply-adds of its convolutions and linear layers, counted by tracing one forward with
`observe_ops`, times 2 flops, times 3 for a training step (forward, input gradient,
weight gradient); everything else (batch norm, ReLU, pooling, the optimizer) is left out,
so the fraction is a lower bound on the time spent in arithmetic that GEMM could do.

    python benchmarks/bench_vs_torch.py --models resnet20 --json /tmp/r.json
    python benchmarks/gemm_peak.py --results /tmp/r.json

Without `--results` it prints the peak and each model's flops per sample only.
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import common  # noqa: E402


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--size", type=int, default=2048, help="side of the square GEMMs")
    p.add_argument("--reps", type=int, default=5, help="GEMMs timed per library (best kept)")
    p.add_argument("--results", help="a bench_vs_torch.py JSON to turn into fractions")
    p.add_argument("--models", default=None,
                   help="comma-separated models (default: those in --results, else all)")
    return p.parse_args(argv)


def best_gemm_gflops(matmul, a, b, reps):
    """The best GFLOP/s of `matmul(a, b)` over `reps` calls (after one untimed call)."""
    n = a.shape[0]
    matmul(a, b)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        matmul(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best / 1e9


def machine_peak(size, reps, torch):
    """{'numpy': GFLOP/s, 'torch': GFLOP/s} of float32 square GEMMs of side `size`."""
    import numpy as np
    rng = np.random.default_rng(0)
    a = rng.standard_normal((size, size), dtype=np.float32)
    b = rng.standard_normal((size, size), dtype=np.float32)
    peak = {"numpy": best_gemm_gflops(np.matmul, a, b, reps)}
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        peak["torch"] = best_gemm_gflops(torch.matmul, ta, tb, reps)
    return peak


def forward_macs_per_sample(name):
    """Multiply-adds of one sample's forward through the convs and linear layers of our
    model `name` (traced at batch 2, divided by 2)."""
    import numpy as np

    import tinygrad_cv as tc
    from tinygrad_cv.autograd import observe_ops
    model = common.build_ours(name)
    model.eval()
    counted = []

    def count(fn, inputs, params, output):
        kind = fn.__name__
        if kind == "Conv2d":
            weight = inputs[1]
            per_output = int(np.prod(weight.shape[1:]))      # Cin/groups * kh * kw
            counted.append(output.data.size * per_output)
        elif kind in ("Linear", "MatMul"):
            counted.append(output.data.size * inputs[0].shape[-1])

    x = tc.tensor(np.zeros((2,) + common.input_shape(name), np.float32))
    with tc.no_grad(), observe_ops(count):
        model(x)
    return sum(counted) / 2


def fractions(results, macs, peak_gflops):
    """Rows of (model, batch, framework, samples/s, GFLOP/s, fraction of peak), train only."""
    rows = []
    for row in results.get("throughput", []):
        if row.get("mode") != "train" or row["model"] not in macs:
            continue
        flops = 6 * macs[row["model"]]          # 2 flops a MAC, 3 GEMM passes a step
        for framework in ("ours", "torch"):
            cell = row.get(framework) or {}
            if "median" in cell:
                gflops = cell["median"] * flops / 1e9
                rows.append((row["model"], row["batch"], framework, cell["median"], gflops,
                             gflops / peak_gflops))
    return rows


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    common.configure_threads(args.threads)   # before numpy/torch are imported
    import tinygrad_cv  # noqa: F401   # before torch, as bench_vs_torch.py (OpenBLAS env)
    torch = common.import_torch()
    common.apply_thread_limits(args.threads, torch)
    runs = []
    if args.results:
        with open(args.results) as f:
            results = json.load(f)
        runs = results["runs"] if "runs" in results else [results]   # --malloc-both: two
    import torch_models
    names = (args.models.split(",") if args.models else
             sorted({r["model"] for run in runs for r in run.get("throughput", [])}) or
             list(torch_models.MODULES))
    peak = machine_peak(args.size, args.reps, torch)
    best = max(peak.values())
    print(f"float32 GEMM {args.size}^3 at {args.threads} threads, best of {args.reps}: " +
          ", ".join(f"{lib} {g:,.1f} GFLOP/s" for lib, g in peak.items()) +
          f"; peak taken as {best:,.1f}")
    macs = {name: forward_macs_per_sample(name) for name in names}
    for name in names:
        print(f"  {name:<12} {macs[name] / 1e6:8.2f} M multiply-adds per sample forward, "
              f"{6 * macs[name] / 1e6:8.1f} MFLOP per sample trained")
    for run in runs:
        rows = fractions(run, macs, best)
        setting = run.get("machine", {}).get("MALLOC_MMAP_MAX_", "?")
        print(f"\nMALLOC_MMAP_MAX_={setting}")
        print(f"{'model':<12} {'batch':>5} {'framework':<9} {'samples/s':>10} "
              f"{'GFLOP/s':>8} {'of peak':>8}")
        for model, batch, fw, rate, gflops, frac in rows:
            print(f"{model:<12} {batch:>5} {fw:<9} {rate:>10,.0f} {gflops:>8.1f} "
                  f"{frac:>8.1%}")


if __name__ == "__main__":
    main()
