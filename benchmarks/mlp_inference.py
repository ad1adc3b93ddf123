"""Why MLP inference trails PyTorch: each layer's GEMM alone (NumPy's BLAS against
PyTorch's), then each whole layer op, then the whole forward, ours beside PyTorch's.

    python benchmarks/mlp_inference.py [--batch-sizes 64,256] [--reps 300] [--threads 2]

For the 784-256-128-10 MLP under no_grad, in microseconds (medians; the two frameworks
alternate repetition by repetition):
  * GEMM: `x @ W.T` in NumPy (OpenBLAS here) against `x @ W.T` in PyTorch (MKL here);
  * layer: our `F.linear_relu` / `F.linear` on Tensors (GEMM + bias + ReLU + the op's
    Python) against PyTorch's `relu(F.linear(...))`;
  * forward: the whole model, as `bench_vs_torch.py --modes infer` runs it.
The gaps between the rows are what each level adds.
"""
from __future__ import annotations

import argparse
import statistics

import common  # puts the repository on sys.path; thread setup before NumPy loads


def median_us(fn, reps):
    """Median wall time of `fn()` in microseconds, after 20 untimed calls."""
    return common.median_call_seconds(fn, reps, warmup=20) * 1e6


def alternate(pairs, reps, rounds=3):
    """Median of `rounds` medians per (ours, theirs) pair, the two interleaved."""
    results = [([], []) for _ in pairs]
    for _ in range(rounds):
        for (ours, theirs), (ours_t, theirs_t) in zip(pairs, results):
            ours_t.append(median_us(ours, reps))
            if theirs is not None:
                theirs_t.append(median_us(theirs, reps))
    return [(statistics.median(a), statistics.median(b) if b else None) for a, b in results]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="64,256")
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    common.configure_threads(args.threads)      # before NumPy, Numba and BLAS load
    import numpy as np

    import tinygrad_cv as tc
    from tinygrad_cv.nn import functional as F
    torch = common.import_torch()
    common.apply_thread_limits(args.threads, torch)
    model = common.build_ours("mlp")
    model.eval()
    layers = [m for m in model.layers if hasattr(m, "weight")]
    print("MLP 784-256-128-10 inference, us (medians; ours/torch > 1 means we are slower)")
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        images, _ = common.synthetic_batch(batch)
        x = tc.Tensor(images)
        rows, pairs = [], []
        h = images.reshape(batch, -1)
        for i, layer in enumerate(layers):
            w, b = layer.weight.data, layer.bias.data
            relu = i < len(layers) - 1
            xh = tc.Tensor(np.ascontiguousarray(h))
            ours_gemm = (lambda h=h, w=w: h @ w.T)
            ours_layer = ((lambda t=xh, l=layer: F.linear_relu(t, l.weight, l.bias)) if relu
                          else (lambda t=xh, l=layer: F.linear(t, l.weight, l.bias)))
            theirs_gemm = theirs_layer = None
            if torch is not None:
                th, tw, tb = (torch.from_numpy(np.ascontiguousarray(a)) for a in (h, w, b))
                theirs_gemm = (lambda th=th, tw=tw: th @ tw.T)
                theirs_layer = ((lambda th=th, tw=tw, tb=tb:
                                 torch.relu(torch.nn.functional.linear(th, tw, tb))) if relu
                                else (lambda th=th, tw=tw, tb=tb:
                                      torch.nn.functional.linear(th, tw, tb)))
            shape = f"{w.shape[1]}->{w.shape[0]}"
            rows += [f"layer {i + 1} GEMM {shape}", f"layer {i + 1} op ({shape})"]
            pairs += [(ours_gemm, theirs_gemm), (ours_layer, theirs_layer)]
            out = h @ w.T + b
            h = np.maximum(out, 0) if relu else out
        rows.append("whole forward")
        theirs_forward = None
        if torch is not None:
            twin = common.build_torch("mlp", torch, weights_from=model).eval()
            timg = torch.from_numpy(images)

            def torch_forward():
                with torch.no_grad():
                    return twin(timg)
            theirs_forward = torch_forward

        def ours_forward():
            with tc.no_grad():
                return model(x)
        pairs.append((ours_forward, theirs_forward))
        with tc.no_grad():
            results = alternate(pairs, args.reps)
        print(f"\nbatch {batch}")
        print(f"  {'':<26} {'ours':>9} {'torch':>9} {'ours/torch':>11}")
        for name, (ours_us, theirs_us) in zip(rows, results):
            ratio = f"{ours_us / theirs_us:10.2f}x" if theirs_us else ""
            theirs_txt = f"{theirs_us:9.1f}" if theirs_us else f"{'-':>9}"
            print(f"  {name:<26} {ours_us:9.1f} {theirs_txt} {ratio}")


if __name__ == "__main__":
    main()
