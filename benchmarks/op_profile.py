"""Where a training step of any benchmark model goes, op type by op type, ours beside
PyTorch's: what `profile_layers.py --model NAME` runs for models other than MnistCNN.

A model like ResNet-20 has ~60 layers of a few kinds, so the table groups by kind: for
each op type (conv, batch norm, relu, add, linear, pooling, loss, ...) the forward and
backward milliseconds per training step, summed over every layer of that kind.

  * ours: every `Function`'s forward and backward is timed (the engine calls both
    through the class, so wrapping them with a timer sees every call); the rest of the
    step (Python between the ops, the engine's bookkeeping, zero_grad) is "other";
  * PyTorch: `torch.profiler` over the same steps; the forward row of a kind is its
    top-level aten op (aten::conv2d, aten::batch_norm, ...), the backward row the
    autograd engine's `evaluate_function: XBackward0` entries of that kind.

Timers add overhead of their own (~1 us per op), so the sums are above a plain step.

    python benchmarks/profile_layers.py --model resnet20 --batch 128
"""
from __future__ import annotations

import collections
import time

import common

LEARNING_RATE, MOMENTUM, WEIGHT_DECAY = 0.01, 0.9, 5e-4

KINDS = (  # (kind, our Function class names, torch forward op names, torch backward names)
    ("conv", ("Conv2d",), ("aten::conv2d",), ("ConvolutionBackward",)),
    ("batch norm", ("BatchNorm",), ("aten::batch_norm",), ("NativeBatchNormBackward",)),
    ("relu / relu6", ("Relu", "Hardtanh", "Relu6", "Clamp"),
     ("aten::relu", "aten::relu_", "aten::hardtanh", "aten::hardtanh_"),
     ("ReluBackward", "HardtanhBackward", "ThresholdBackward")),
    ("add (residual)", ("Add",), ("aten::add", "aten::add_"), ("AddBackward",)),
    ("linear", ("Linear", "MatMul"), ("aten::linear",), ("AddmmBackward", "MmBackward")),
    ("pooling", ("MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Mean"),
     ("aten::max_pool2d", "aten::adaptive_avg_pool2d", "aten::avg_pool2d", "aten::mean"),
     ("MaxPool2DWithIndicesBackward", "AdaptiveAvgPool2DBackward", "MeanBackward",
      "AvgPool2DBackward")),
    ("loss", ("CrossEntropy", "NllLoss", "LogSoftmax"),
     ("aten::cross_entropy_loss", "aten::nll_loss", "aten::log_softmax"),
     ("NllLossBackward", "LogSoftmaxBackward")),
    ("reshape / flatten", ("Reshape", "View", "Flatten"),
     ("aten::flatten", "aten::view", "aten::reshape"), ("ViewBackward", "ReshapeAlias")),
)


def _kind_of(name, column):
    for kind, *names in KINDS:
        if any(name.startswith(n) for n in names[column]):
            return kind
    return None


# --------------------------------------------------------------------------- ours

def _all_functions(base):
    seen, todo = [], [base]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub not in seen:
                seen.append(sub)
                todo.append(sub)
    return seen


def _timed_static(cls, attr, bucket, key):
    original = cls.__dict__[attr].__func__

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            bucket[key] += time.perf_counter() - start
    setattr(cls, attr, staticmethod(wrapper))
    return lambda: setattr(cls, attr, staticmethod(original))


def profile_ours(name, batch, steps):
    """{(kind or class name, 'fwd'/'bwd'): seconds per step}, plus optimizer and whole."""
    import tinygrad_cv as tc
    from tinygrad_cv import optim
    from tinygrad_cv.autograd import Function
    from tinygrad_cv.nn import functional as F

    model = common.build_ours(name)
    images, labels = common.synthetic_batch(batch, name=name)
    x, y = tc.tensor(images), tc.tensor(labels)
    opt = optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM,
                    weight_decay=WEIGHT_DECAY)
    loss_fn = F.nll_loss if common.outputs_log_probs(name) else F.cross_entropy
    times = collections.defaultdict(float)

    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        start = time.perf_counter()
        opt.step()
        times[("sgd step", "fwd")] += time.perf_counter() - start

    for _ in range(3):
        step()
    restore = []
    for cls in _all_functions(Function):
        label = _kind_of(cls.__name__, 0) or cls.__name__
        for attr, phase in (("forward", "fwd"), ("backward", "bwd")):
            if isinstance(cls.__dict__.get(attr), staticmethod):
                restore.append(_timed_static(cls, attr, times, (label, phase)))
    times.clear()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    whole = time.perf_counter() - start
    for undo in restore:
        undo()
    return {k: v / steps for k, v in times.items()}, whole / steps


# --------------------------------------------------------------------------- torch

def profile_torch(name, batch, steps, torch):
    from torch.profiler import ProfilerActivity, profile as torch_profile

    ours = common.build_ours(name)
    model = common.build_torch(name, torch, weights_from=ours)
    images, labels = common.synthetic_batch(batch, name=name)
    x, y = torch.from_numpy(images), torch.from_numpy(labels).long()
    opt = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM,
                          weight_decay=WEIGHT_DECAY)
    F = torch.nn.functional
    loss_fn = F.nll_loss if common.outputs_log_probs(name) else F.cross_entropy

    def step():
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    whole = (time.perf_counter() - start) / steps
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            step()
    times = collections.defaultdict(float)
    for event in prof.key_averages():
        key = event.key
        if key.startswith("autograd::engine::evaluate_function: "):
            op = key.split(": ", 1)[1]
            times[(_kind_of(op, 2) or op, "bwd")] += event.cpu_time_total * 1e-6
        elif key.startswith("Optimizer.step"):
            times[("sgd step", "fwd")] += event.cpu_time_total * 1e-6
        else:
            kind = _kind_of(key, 1)
            if kind is not None and key in _top_level_names():
                times[(kind, "fwd")] += event.cpu_time_total * 1e-6
    return {k: v / steps for k, v in times.items()}, whole


def _top_level_names():
    """The forward op names counted (nested ones, e.g. aten::convolution inside
    aten::conv2d, are not, so nothing is counted twice)."""
    return {n for _, _, fwd, _ in KINDS for n in fwd}


# --------------------------------------------------------------------------- report

def table(ours, torch_times, ours_whole, torch_whole):
    kinds = [k for k, *_ in KINDS] + ["sgd step"]
    extra = sorted({k for k, _ in ours} - set(kinds))
    header = (f"{'op kind':<18} {'ours fwd':>8} {'torch fwd':>9} {'ours bwd':>8} "
              f"{'torch bwd':>9} {'ours f+b':>8} {'torch f+b':>9} {'gap ms':>7}")
    lines = [header, "-" * len(header)]

    def cell(times, kind, phase):
        return 1e3 * times.get((kind, phase), 0.0) if times is not None else None

    total_ours = total_torch = 0.0
    for kind in kinds + extra:
        of, ob = cell(ours, kind, "fwd"), cell(ours, kind, "bwd")
        tf, tb = cell(torch_times, kind, "fwd"), cell(torch_times, kind, "bwd")
        if of + ob == 0 and not (tf or tb):
            continue
        total_ours += of + ob
        t = "-" if tf is None else f"{tf:9.2f}"
        lines.append(f"{kind:<18} {of:8.2f} {t:>9} {ob:8.2f} "
                     f"{'-' if tb is None else f'{tb:9.2f}':>9} {of + ob:8.2f} "
                     f"{'-' if tf is None else f'{tf + tb:9.2f}':>9} "
                     f"{'-' if tf is None else f'{of + ob - tf - tb:7.2f}':>7}")
        if tf is not None:
            total_torch += tf + tb
    lines.append("-" * len(header))
    w_t = "-" if torch_whole is None else f"{1e3 * torch_whole:9.2f}"
    lines.append(f"{'sum of rows':<18} {'':>8} {'':>9} {'':>8} {'':>9} {total_ours:8.2f} "
                 f"{total_torch if torch_times is not None else 0:9.2f}")
    lines.append(f"{'whole step':<18} {'':>8} {'':>9} {'':>8} {'':>9} "
                 f"{1e3 * ours_whole:8.2f} {w_t:>9}")
    lines.append("(ms per training step; 'whole step' minus 'sum of rows' is the Python and "
                 "engine time between ops; gap = ours - torch)")
    return "\n".join(lines)


def run(args):
    torch = None if args.no_torch else common.import_torch()
    common.apply_thread_limits(args.threads, torch)
    steps = args.reps
    ours, ours_whole = profile_ours(args.model, args.batch, steps)
    torch_times = torch_whole = None
    if torch is not None:
        torch_times, torch_whole = profile_torch(args.model, args.batch, steps, torch)
    info = common.machine_info(args.threads, "cpu", torch)
    common.print_machine_info(info)
    print(f"\n{args.model} training step by op kind, batch {args.batch}, {steps} steps")
    print(table(ours, torch_times, ours_whole, torch_whole))
