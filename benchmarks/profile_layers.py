"""Where the time of a MnistCNN training step goes: per-layer forward and backward, ours
beside PyTorch's.

For each stage of pytorch/examples' MNIST CNN (conv1, relu, conv2, relu, max-pool,
dropout, flatten, fc1, relu, dropout, fc2, log_softmax + nll loss) and for the SGD
momentum step, it times, in milliseconds (median over repetitions, the two frameworks
alternating repetition by repetition, same thread count):

  * forward: the layer applied to its saved input with grad mode on (as in training,
    recording the graph); the input is a fresh leaf that requires grad, except for conv1
    whose input is the image (no dx, as in a real step);
  * backward: `out.backward(upstream)` of that layer alone (the forward that builds `out`
    is not timed), with a fixed random upstream gradient; the loss's backward is that of
    the scalar loss;
  * the optimizer step with every parameter's gradient present.

Every stage's input is the output of the previous stage computed once by our model from
a synthetic batch; PyTorch gets the same arrays and the same weights. The table ends with
the sum of the stages and a whole training step timed end to end: the difference is what
the per-layer view misses (zero_grad, graph bookkeeping, Python glue).

    python benchmarks/profile_layers.py               # batch 64, 2 threads
    python benchmarks/profile_layers.py --quick
    python benchmarks/bench_vs_torch.py --profile     # the same
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import common

DEFAULT_JSON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                            "profile.json")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="mnist_cnn", choices=common.MODEL_NAMES,
                   help="mnist_cnn: the per-stage table below; any other model: a table "
                        "by op kind (op_profile.py)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--reps", type=int, default=None,
                   help="timed repetitions per stage and framework (default 25; quick 10)")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--no-torch", action="store_true", help="profile our engine only")
    p.add_argument("--json", default=DEFAULT_JSON)
    args = p.parse_args(argv)
    if args.reps is None:
        args.reps = 10 if args.quick else 25
    return args


# --------------------------------------------------------------------------- frameworks

class Framework:
    """What the profiler needs from one framework: leaves, layers, grads, sync."""

    def __init__(self, name, model, functional, module, device, sync):
        self.name = name
        self.model = model
        self.F = functional
        self.module = module  # tinygrad_cv or torch
        self.device = device
        self.sync = sync
        self.optimizer = None

    def leaf(self, array, requires_grad):
        """A fresh leaf tensor holding a copy of `array` on the device."""
        if self.name == "torch":
            t = self.module.from_numpy(array.copy()).to(self.device)
            return t.requires_grad_(requires_grad)
        return self.module.tensor(array, device=self.device, requires_grad=requires_grad)

    def labels(self, array):
        if self.name == "torch":
            return self.module.from_numpy(array).to(self.device)
        return self.module.tensor(array, device=self.device)

    def stages(self, labels):
        """(name, function, input needs grad) for every stage of the forward pass."""
        m, F = self.model, self.F
        y = self.labels(labels)
        return [
            ("conv1", m.conv1, False),
            ("relu1", F.relu, True),
            ("conv2", m.conv2, True),
            ("relu2", F.relu, True),
            ("max_pool2d", lambda x: F.max_pool2d(x, 2), True),
            ("dropout1", m.dropout1, True),
            ("flatten", lambda x: x.flatten(1), True),
            ("fc1", m.fc1, True),
            ("relu3", F.relu, True),
            ("dropout2", m.dropout2, True),
            ("fc2", m.fc2, True),
            ("log_softmax+nll", lambda x: F.nll_loss(F.log_softmax(x, dim=1), y), True),
        ]

    def zero_grad(self):
        for p in self.model.parameters():
            p.grad = None


def load_frameworks(args, images):
    """Our MnistCNN and (when PyTorch is installed) its twin with the same weights."""
    import tinygrad_cv as tc
    from tinygrad_cv import optim
    from tinygrad_cv.nn import functional as F

    torch = None if args.no_torch else common.import_torch()
    args.thread_setting = common.apply_thread_limits(args.threads, torch)
    ours_model = common.build_ours("mnist_cnn", args.device)
    ours = Framework("ours", ours_model, F, tc, args.device,
                     common.synchronizer("ours", args.device))
    ours.optimizer = optim.SGD(ours_model.parameters(), lr=0.01, momentum=0.9)
    frameworks = [ours]
    if torch is not None:
        from torch.nn import functional as TF
        torch_model = common.build_torch("mnist_cnn", torch, args.device,
                                         weights_from=ours_model)
        theirs = Framework("torch", torch_model, TF, torch, args.device,
                           common.synchronizer("torch", args.device, torch))
        theirs.optimizer = torch.optim.SGD(torch_model.parameters(), lr=0.01, momentum=0.9)
        frameworks.append(theirs)
    for fw in frameworks:
        fw.model.train()
    return frameworks, torch


# --------------------------------------------------------------------------- timing

def stage_inputs(ours, images, labels):
    """The input array of every stage, from one forward pass of our model."""
    import numpy as np
    inputs, x = [], images
    for name, fn, _ in ours.stages(labels):
        inputs.append(np.ascontiguousarray(x))
        out = fn(ours.leaf(x, requires_grad=False))
        x = common._to_numpy(out.detach())
    return inputs


def time_forward(fw, fn, array, needs_grad):
    """Seconds of one forward of `fn` on a fresh leaf (graph recorded, as in training)."""
    x = fw.leaf(array, needs_grad)
    return common.timed(lambda: fn(x), fw.sync)


def time_backward(fw, fn, array, needs_grad, upstream):
    """Seconds of `out.backward(upstream)` for one stage, its forward untimed."""
    fw.zero_grad()
    x = fw.leaf(array, needs_grad)
    out = fn(x)
    if upstream is None:
        return common.timed(out.backward, fw.sync)
    grad = fw.leaf(upstream, requires_grad=False)
    return common.timed(lambda: out.backward(grad), fw.sync)


def upstream_gradient(ours, fn, array, seed):
    """A fixed random gradient shaped like the stage's output (None for a scalar loss)."""
    import numpy as np
    out = fn(ours.leaf(array, requires_grad=False))
    if out.ndim == 0:
        return None
    return np.random.default_rng(seed).standard_normal(out.shape).astype(np.float32)


def alternate(frameworks, reps, measure):
    """Call measure(fw) reps times per framework, alternating; warm-up calls untimed."""
    for fw in frameworks:
        measure(fw)
        measure(fw)
    samples = {fw.name: [] for fw in frameworks}
    for r in range(reps):
        order = frameworks if r % 2 == 0 else list(reversed(frameworks))
        for fw in order:
            samples[fw.name].append(measure(fw))
    return samples


def full_step_fn(fw, images, labels):
    """One whole training step of `fw` (zero_grad, forward, nll loss, backward, step)."""
    x = fw.leaf(images, requires_grad=False)
    y = fw.labels(labels)

    def step():
        fw.optimizer.zero_grad()
        loss = fw.F.nll_loss(fw.model(x), y)
        loss.backward()
        fw.optimizer.step()
    return step


def profile(args):
    """Every stage's forward and backward, the optimizer step and a full step, in ms."""
    images, labels = common.synthetic_batch(args.batch)
    frameworks, torch = load_frameworks(args, images)
    ours = frameworks[0]
    inputs = stage_inputs(ours, images, labels)
    rows = []
    stage_lists = {fw.name: fw.stages(labels) for fw in frameworks}
    for i, (name, _, needs_grad) in enumerate(ours.stages(labels)):
        upstream = upstream_gradient(ours, stage_lists["ours"][i][1], inputs[i], seed=i)
        fwd = alternate(frameworks, args.reps, lambda fw: time_forward(
            fw, stage_lists[fw.name][i][1], inputs[i], needs_grad))
        bwd = alternate(frameworks, args.reps, lambda fw: time_backward(
            fw, stage_lists[fw.name][i][1], inputs[i], needs_grad, upstream))
        rows.append(_row(name, fwd, bwd))
        print(f"  profiled {name}", flush=True)

    for fw in frameworks:  # give every parameter a gradient for the optimizer step
        full_step_fn(fw, images, labels)()
    step = alternate(frameworks, args.reps, lambda fw: common.timed(fw.optimizer.step, fw.sync))
    rows.append(_row("sgd step", step, None))
    steps = {fw.name: full_step_fn(fw, images, labels) for fw in frameworks}
    whole = alternate(frameworks, args.reps,
                      lambda fw: common.timed(steps[fw.name], fw.sync))
    return rows, _row("full train step", whole, None), frameworks, torch


def _row(name, fwd, bwd):
    """A result row: medians in ms per framework, with the raw samples."""
    row = {"stage": name}
    for framework, samples in fwd.items():
        cell = {"fwd_ms": 1e3 * common.median(samples), "fwd_samples_ms":
                [1e3 * s for s in samples]}
        if bwd is not None:
            cell["bwd_ms"] = 1e3 * common.median(bwd[framework])
            cell["bwd_samples_ms"] = [1e3 * s for s in bwd[framework]]
        else:
            cell["bwd_ms"] = 0.0
        cell["total_ms"] = cell["fwd_ms"] + cell["bwd_ms"]
        row[framework] = cell
    return row


# --------------------------------------------------------------------------- report

def _ms(row, framework, key):
    cell = row.get(framework)
    return f"{cell[key]:.2f}" if cell else "-"


def profile_table(rows, whole):
    """The per-stage table as text, with sums, the full step and our share of the step."""
    ours_total = sum(r["ours"]["total_ms"] for r in rows)
    torch_total = sum(r["torch"]["total_ms"] for r in rows) if "torch" in rows[0] else None
    header = (f"{'stage':<16} {'ours fwd':>8} {'torch fwd':>9} {'ours bwd':>8} "
              f"{'torch bwd':>9} {'ours f+b':>8} {'torch f+b':>9} {'ours/torch':>10} "
              f"{'% of ours':>9}")
    lines = [header, "-" * len(header)]
    for row in rows + [{"stage": "sum of stages",
                        "ours": {"fwd_ms": sum(r["ours"]["fwd_ms"] for r in rows),
                                 "bwd_ms": sum(r["ours"]["bwd_ms"] for r in rows),
                                 "total_ms": ours_total},
                        **({"torch": {"fwd_ms": sum(r["torch"]["fwd_ms"] for r in rows),
                                      "bwd_ms": sum(r["torch"]["bwd_ms"] for r in rows),
                                      "total_ms": torch_total}}
                           if torch_total is not None else {})}]:
        ratio = "-"
        if "torch" in row and row["torch"]["total_ms"] > 0:
            ratio = f"{row['ours']['total_ms'] / row['torch']['total_ms']:.2f}x"
        share = f"{100 * row['ours']['total_ms'] / ours_total:.1f}%"
        lines.append(f"{row['stage']:<16} {_ms(row, 'ours', 'fwd_ms'):>8} "
                     f"{_ms(row, 'torch', 'fwd_ms'):>9} {_ms(row, 'ours', 'bwd_ms'):>8} "
                     f"{_ms(row, 'torch', 'bwd_ms'):>9} {_ms(row, 'ours', 'total_ms'):>8} "
                     f"{_ms(row, 'torch', 'total_ms'):>9} {ratio:>10} {share:>9}")
    lines.append("-" * len(header))
    ratio = "-"
    if "torch" in whole:
        ratio = f"{whole['ours']['total_ms'] / whole['torch']['total_ms']:.2f}x"
    lines.append(f"{'full train step':<16} {'':>8} {'':>9} {'':>8} {'':>9} "
                 f"{_ms(whole, 'ours', 'total_ms'):>8} {_ms(whole, 'torch', 'total_ms'):>9} "
                 f"{ratio:>10}")
    lines.append("(ms, medians; ours/torch is a time ratio: above 1 means we are slower)")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    common.configure_threads(args.threads)  # before numpy/numba/torch are imported
    if args.model != "mnist_cnn":
        import op_profile
        op_profile.run(args)
        return
    rows, whole, frameworks, torch = profile(args)
    info = common.machine_info(args.threads, args.device, torch)
    info["thread_setting"] = args.thread_setting
    print()
    common.print_machine_info(info)
    print(f"\nMnistCNN per-stage profile, batch {args.batch}, {args.reps} repetitions")
    print(profile_table(rows, whole))
    os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"machine": info, "batch": args.batch, "reps": args.reps,
                   "stages": rows, "full_step": whole}, f, indent=2)
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
