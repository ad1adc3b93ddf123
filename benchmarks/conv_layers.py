"""Every distinct convolution of a benchmark model timed alone, ours beside PyTorch's:
forward + backward (dx and dW) of `F.conv2d` on the layer's real input shape.

    python benchmarks/conv_layers.py [--model mobilenet_v2] [--batch 64] [--reps 5]

The shapes come from one forward pass of our model with forward hooks on its Conv2d
layers; each (layer geometry, input shape) is timed once and weighted by how often the
model uses it. Used to find which kind of conv (depthwise, 1x1, 3x3 at few channels)
holds a model back (benchmarks/README.md, "Decisions").
"""
from __future__ import annotations

import argparse
from collections import Counter

import common  # puts the repository on sys.path; thread setup before NumPy loads


def conv_shapes(name, batch):
    """Counter of (in, out, kernel, stride, padding, groups, input shape) of model `name`."""
    import tinygrad_cv as tc
    model = common.build_ours(name)
    seen = []

    def record(module, args, output):
        seen.append((module.in_channels, module.out_channels, module.kernel_size,
                     module.stride, module.padding, module.groups, tuple(args[0].shape)))
    for module in model.modules():
        if type(module).__name__ == "Conv2d":
            module.register_forward_hook(record)
    images, _ = common.synthetic_batch(batch, name=name)
    with tc.no_grad():
        model(tc.tensor(images))
    return Counter(seen)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    common.configure_threads(args.threads)      # before NumPy, Numba and BLAS load
    import numpy as np

    import tinygrad_cv as tc
    from tinygrad_cv.nn import functional as F
    torch = common.import_torch()
    common.apply_thread_limits(args.threads, torch)
    common.print_machine_info(common.machine_info(args.threads, "cpu", torch))

    def ms(fn):
        return common.median_call_seconds(fn, args.reps) * 1e3

    rng = np.random.default_rng(0)
    print(f"\n{args.model}: each conv's forward + backward alone, batch {args.batch}, "
          f"median of {args.reps} (ms)")
    print(f"{'in':>4} {'out':>4} {'k':>3} {'s':>2} {'groups':>6} {'input':>18} {'uses':>4} "
          f"{'ours':>8} {'torch':>8} {'ours/torch':>10}")
    totals = [0.0, 0.0]
    for (cin, cout, kernel, stride, padding, groups, shape), uses in sorted(
            conv_shapes(args.model, args.batch).items(), key=lambda item: item[0][5] > 1):
        x = rng.standard_normal(shape).astype(np.float32)
        w = (rng.standard_normal((cout, cin // groups) + kernel) * 0.1).astype(np.float32)
        ours_x, ours_w = (tc.tensor(a, requires_grad=True) for a in (x, w))

        def ours():
            y = F.conv2d(ours_x, ours_w, None, stride, padding, 1, groups)
            y.backward(tc.ones(*y.shape))
            ours_x.grad = ours_w.grad = None
        ours_ms = ms(ours)
        torch_ms = float("nan")
        if torch is not None:
            torch_x, torch_w = (torch.tensor(a, requires_grad=True) for a in (x, w))

            def theirs():
                y = torch.nn.functional.conv2d(torch_x, torch_w, None, stride, padding, 1,
                                               groups)
                y.backward(torch.ones_like(y))
                torch_x.grad = torch_w.grad = None
            torch_ms = ms(theirs)
        totals[0] += ours_ms * uses
        totals[1] += torch_ms * uses
        print(f"{cin:4d} {cout:4d} {kernel[0]:3d} {stride[0]:2d} {groups:6d} {str(shape):>18} "
              f"{uses:4d} {ours_ms:8.2f} {torch_ms:8.2f} {ours_ms / torch_ms:9.2f}x")
    print(f"all convs, weighted by uses: ours {totals[0]:.1f} ms, torch {totals[1]:.1f} ms")


if __name__ == "__main__":
    main()
