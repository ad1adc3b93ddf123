"""tinygrad_cv against PyTorch: training and inference throughput, peak RSS, compile time.

For each model (MLP, LeNet5, MnistCNN on MNIST-shaped input; ResNet-20, a MobileNetV2 and
a VGG-11-BN on CIFAR-shaped input; every one written the plain PyTorch way, in
tinygrad_cv/models, and its PyTorch twin run from the same source text: torch_models.py)
and batch size it measures, in one process:
  * train: zero_grad, forward, loss (nll for MnistCNN, cross-entropy otherwise), backward,
    SGD(lr=0.01, momentum=0.9, weight_decay=5e-4) step;
  * infer: forward under no_grad in eval mode;
as samples/s over >= 5 timed trials after warm-up, the two frameworks ALTERNATING trial by
trial with the same thread count, data (synthetic float32 images, fixed seed) and
initial weights (copied from our model into PyTorch's through NumPy). Peak RSS is measured
in separate subprocesses (`--rss-child`), one per framework/model/batch, and the first
training step of our engine (Numba compilation) with a cold and a warm on-disk cache in
further subprocesses, never inside a timed trial.

    python benchmarks/bench_vs_torch.py --quick          # about one minute
    python benchmarks/bench_vs_torch.py                  # full: batch 64 and 256
    python benchmarks/bench_vs_torch.py --malloc-both    # default malloc and MALLOC_MMAP_MAX_=0
    python benchmarks/bench_vs_torch.py --profile        # per-layer times (profile_layers.py)

Runs without PyTorch installed (then only our figures are shown).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import common

DEFAULT_JSON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results",
                            "latest.json")
RESULT_MARKER = "BENCH_CHILD_RESULT "
"""Prefix of the one JSON line a child process prints for its parent."""

LEARNING_RATE = 0.01
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4


# --------------------------------------------------------------------------- arguments

def parse_args(argv):
    """Command-line options; `--quick` fills in smaller defaults for anything not given."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="about one minute: batch 64, 5 short trials, fewer RSS steps")
    p.add_argument("--models", default=",".join(common.MODEL_NAMES),
                   help="comma-separated subset of " + ",".join(common.MODEL_NAMES))
    p.add_argument("--batch-sizes", default=None, help="comma-separated (default 64,256)")
    p.add_argument("--modes", default="train,infer", help="train, infer or both")
    p.add_argument("--threads", type=int, default=2, help="threads for both frameworks")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--frameworks", default="ours,torch",
                   help="ours, torch or both (torch is skipped when not installed)")
    p.add_argument("--trials", type=int, default=None, help="timed trials per framework")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps before trials")
    p.add_argument("--trial-seconds", type=float, default=None,
                   help="target length of one trial (sets the steps per trial)")
    p.add_argument("--rss-steps", type=int, default=None,
                   help="training steps in each peak-RSS subprocess")
    p.add_argument("--no-rss", action="store_true", help="skip the peak-RSS subprocesses")
    p.add_argument("--no-compile", action="store_true",
                   help="skip the first-step (Numba compile) subprocesses")
    p.add_argument("--json", default=DEFAULT_JSON, help="where to write the results")
    p.add_argument("--malloc-both", action="store_true",
                   help="run everything twice in subprocesses: default malloc, then "
                        "MALLOC_MMAP_MAX_=0; show both tables")
    p.add_argument("--profile", action="store_true",
                   help="per-layer forward/backward times of MnistCNN instead "
                        "(see profile_layers.py)")
    # Internal modes used by the subprocesses this script starts.
    p.add_argument("--rss-child", choices=("ours", "torch"), default=None,
                   help=argparse.SUPPRESS)
    p.add_argument("--first-step-child", choices=("ours", "torch"), default=None,
                   help=argparse.SUPPRESS)
    p.add_argument("--model", default="mnist_cnn", help=argparse.SUPPRESS)
    p.add_argument("--batch", type=int, default=64, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    _fill_defaults(args)
    return args


def _fill_defaults(args):
    """Full-run or quick-run defaults for the options left unset; validate the lists."""
    quick = args.quick
    if args.batch_sizes is None:
        args.batch_sizes = "64" if quick else "64,256"
    args.batch_list = [int(b) for b in args.batch_sizes.split(",") if b]
    args.model_list = [m for m in args.models.split(",") if m]
    for name in args.model_list:
        if name not in common.MODEL_NAMES:
            raise SystemExit(f"unknown model {name!r}; choose from {common.MODEL_NAMES}")
    args.mode_list = [m for m in args.modes.split(",") if m]
    args.framework_list = [f for f in args.frameworks.split(",") if f]
    defaults = {"trials": (5, 7), "warmup": (2, 5), "trial_seconds": (0.2, 0.75),
                "rss_steps": (5, 20)}
    for name, (quick_value, full_value) in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, quick_value if quick else full_value)
    args.trials = max(args.trials, 1)
    args.warmup = max(args.warmup, 2)


# --------------------------------------------------------------------------- step functions

def make_ours_step(name, batch, mode, device, images, labels):
    """(model, step function) for our engine: one training step or one no-grad forward."""
    import tinygrad_cv as tc
    from tinygrad_cv import optim
    from tinygrad_cv.nn import functional as F

    model = common.build_ours(name, device)
    x = tc.tensor(images, device=device)
    y = tc.tensor(labels, device=device)
    if mode == "infer":
        model.eval()

        def infer_step():
            with tc.no_grad():
                return model(x)
        return model, infer_step

    model.train()
    optimizer = optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM,
                          weight_decay=WEIGHT_DECAY)
    loss_fn = F.nll_loss if common.outputs_log_probs(name) else F.cross_entropy

    def train_step():
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return model, train_step


def make_torch_step(name, batch, mode, device, images, labels, torch, weights_from=None):
    """(model, step function) for PyTorch, the twin of `make_ours_step`."""
    from torch.nn import functional as F

    if device == "cuda":
        # Same arithmetic as CuPy's float32 GEMMs: PyTorch would otherwise run cuDNN
        # convolutions in TF32 (its default), which is not float32 work.
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    model = common.build_torch(name, torch, device, weights_from)
    x = torch.from_numpy(images).to(device)
    y = torch.from_numpy(labels).to(device)
    if mode == "infer":
        model.eval()

        def infer_step():
            with torch.no_grad():
                return model(x)
        return model, infer_step

    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=MOMENTUM,
                                weight_decay=WEIGHT_DECAY)
    loss_fn = F.nll_loss if common.outputs_log_probs(name) else F.cross_entropy

    def train_step():
        optimizer.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return model, train_step


# --------------------------------------------------------------------------- throughput

class Runner:
    """One framework's step function with its synchroniser and steps per trial."""

    def __init__(self, framework, step, sync):
        self.framework = framework
        self.step = step
        self.sync = sync
        self.steps_per_trial = 1
        self.samples_per_s = []

    def run_steps(self, n):
        for _ in range(n):
            self.step()

    def warm_up(self, warmup_steps, trial_seconds):
        """Run untimed steps (compiling kernels), then size a trial to ~trial_seconds."""
        self.run_steps(warmup_steps - 1)
        seconds = common.timed(self.step, self.sync)
        self.steps_per_trial = max(1, round(trial_seconds / max(seconds, 1e-6)))

    def trial(self, batch):
        """One timed trial; records and returns samples/s."""
        seconds = common.timed(lambda: self.run_steps(self.steps_per_trial), self.sync)
        rate = self.steps_per_trial * batch / seconds
        self.samples_per_s.append(rate)
        return rate


def build_runners(args, name, batch, mode, torch):
    """A Runner per available framework (errors are returned per framework, not raised)."""
    images, labels = common.synthetic_batch(batch, name=name)
    runners, errors, ours_model = [], {}, None
    if "ours" in args.framework_list:
        try:
            ours_model, step = make_ours_step(name, batch, mode, args.device, images, labels)
            runners.append(Runner("ours", step,
                                  common.synchronizer("ours", args.device)))
        except Exception as exc:  # the library may be incomplete while it is written
            errors["ours"] = f"{type(exc).__name__}: {exc}"
    if torch is not None and "torch" in args.framework_list:
        _, step = make_torch_step(name, batch, mode, args.device, images, labels, torch,
                                  weights_from=ours_model)
        runners.append(Runner("torch", step, common.synchronizer("torch", args.device, torch)))
    return runners, errors


def measure_throughput(args, name, batch, mode, torch):
    """Alternating timed trials of every framework for one (model, batch, mode)."""
    runners, errors = build_runners(args, name, batch, mode, torch)
    working = []
    for runner in runners:
        try:
            runner.warm_up(args.warmup, args.trial_seconds)
            working.append(runner)
        except Exception as exc:
            errors[runner.framework] = f"{type(exc).__name__}: {exc}"
    for t in range(args.trials):
        # Alternate who goes first so neither always runs on a "fresh" or "tired" machine.
        order = working if t % 2 == 0 else list(reversed(working))
        for runner in order:
            runner.trial(batch)
    row = {"model": name, "batch": batch, "mode": mode}
    for runner in working:
        rates = runner.samples_per_s
        row[runner.framework] = {"median": common.median(rates), "min": min(rates),
                                 "max": max(rates), "trials": rates,
                                 "steps_per_trial": runner.steps_per_trial}
    for framework, message in errors.items():
        row[framework] = {"error": message}
    _add_ratios(row)
    return row


def _add_ratios(row):
    """ours/torch of the medians, and the median of the per-trial (paired) ratios."""
    ours, theirs = row.get("ours", {}), row.get("torch", {})
    if "median" in ours and "median" in theirs:
        row["ratio"] = ours["median"] / theirs["median"]
        paired = [a / b for a, b in zip(ours["trials"], theirs["trials"])]
        row["paired_ratio"] = common.median(paired)


# --------------------------------------------------------------------------- subprocesses

def child_command(args, *extra):
    """The command line re-running this script with the run's thread/device settings."""
    return [sys.executable, os.path.abspath(__file__), "--threads", str(args.threads),
            "--device", args.device, *extra]


def run_child(command, env=None):
    """Run a child process and return the dict it printed after RESULT_MARKER."""
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARKER):
            return json.loads(line[len(RESULT_MARKER):])
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"error": f"exit {proc.returncode}: {tail[0]}"}


def rss_child(args):
    """Child mode: train `rss_steps` steps of one framework and report its peak RSS."""
    baseline = common.current_rss_mb()
    torch = common.import_torch() if args.rss_child == "torch" else None
    if args.rss_child == "ours":
        import tinygrad_cv  # noqa: F401  (imports count in the "after import" figure)
    common.apply_thread_limits(args.threads, torch)
    after_import = common.current_rss_mb()
    images, labels = common.synthetic_batch(args.batch, name=args.model)
    if args.rss_child == "ours":
        _, step = make_ours_step(args.model, args.batch, "train", args.device, images, labels)
    else:
        _, step = make_torch_step(args.model, args.batch, "train", args.device, images,
                                  labels, torch)
    for _ in range(args.rss_steps):
        step()
    common.synchronizer(args.rss_child, args.device, torch)()
    result = {"peak_rss_mb": common.peak_rss_mb(), "after_import_rss_mb": after_import,
              "interpreter_rss_mb": baseline, "steps": args.rss_steps,
              "ru_maxrss_mb": common.ru_maxrss_mb()}
    result.update(_gpu_memory(args.rss_child, args.device, torch))
    print(RESULT_MARKER + json.dumps(result), flush=True)


def _gpu_memory(framework, device, torch):
    """GPU memory held by the framework's allocator at the end (cuda only), in MiB."""
    if device != "cuda":
        return {}
    if framework == "torch":
        return {"gpu_peak_allocated_mb": torch.cuda.max_memory_allocated() / 2**20}
    import cupy
    return {"gpu_pool_total_mb": cupy.get_default_memory_pool().total_bytes() / 2**20}


def first_step_child(args):
    """Child mode: time import, the first training step and a few later ones."""
    start = time.perf_counter()
    torch = common.import_torch() if args.first_step_child == "torch" else None
    if args.first_step_child == "ours":
        import tinygrad_cv  # noqa: F401
    common.apply_thread_limits(args.threads, torch)
    import_s = time.perf_counter() - start
    images, labels = common.synthetic_batch(args.batch, name=args.model)
    if args.first_step_child == "ours":
        _, step = make_ours_step(args.model, args.batch, "train", args.device, images, labels)
    else:
        _, step = make_torch_step(args.model, args.batch, "train", args.device, images,
                                  labels, torch)
    sync = common.synchronizer(args.first_step_child, args.device, torch)
    first = common.timed(step, sync)
    later = [common.timed(step, sync) for _ in range(3)]
    result = {"import_s": import_s, "first_step_s": first,
              "steady_step_s": common.median(later)}
    print(RESULT_MARKER + json.dumps(result), flush=True)


def measure_rss(args, name, batch, have_torch):
    """Peak RSS of a short training run of each framework, each in its own process."""
    row = {"model": name, "batch": batch, "steps": args.rss_steps}
    frameworks = [f for f in args.framework_list if f != "torch" or have_torch]
    for framework in frameworks:
        command = child_command(args, "--rss-child", framework, "--model", name,
                                "--batch", str(batch), "--rss-steps", str(args.rss_steps))
        row[framework] = run_child(command)
    if "peak_rss_mb" in row.get("ours", {}) and "peak_rss_mb" in row.get("torch", {}):
        row["ratio"] = row["ours"]["peak_rss_mb"] / row["torch"]["peak_rss_mb"]
    return row


def measure_first_step(args, name, batch, have_torch):
    """Our first training step with a cold, then a warm, Numba cache (fresh cache dir)."""
    row = {"model": name, "batch": batch}
    if "ours" in args.framework_list:
        cache_dir = tempfile.mkdtemp(prefix="bench_numba_cache_")
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
        command = child_command(args, "--first-step-child", "ours", "--model", name,
                                "--batch", str(batch))
        try:
            row["ours_cold"] = run_child(command, env)
            row["ours_warm"] = run_child(command, env)
        finally:
            shutil.rmtree(cache_dir, ignore_errors=True)
    if have_torch and "torch" in args.framework_list:
        command = child_command(args, "--first-step-child", "torch", "--model", name,
                                "--batch", str(batch))
        row["torch"] = run_child(command)
    return row


# --------------------------------------------------------------------------- tables

def _rate(cell):
    """'median [min-max]' samples/s of one framework, or its error."""
    if not cell:
        return "-"
    if "error" in cell:
        return "error"
    return f"{cell['median']:,.0f} [{cell['min']:,.0f}-{cell['max']:,.0f}]"


def throughput_table(rows):
    """The samples/s table as text."""
    header = (f"{'model':<10} {'batch':>5} {'mode':<5}  {'tinygrad_cv samples/s':>28}  "
              f"{'torch samples/s':>28}  {'ours/torch':>10}  {'paired':>6}")
    lines = [header, "-" * len(header)]
    for row in rows:
        ratio = f"{row['ratio']:.2f}x" if "ratio" in row else "-"
        paired = f"{row['paired_ratio']:.2f}x" if "paired_ratio" in row else "-"
        lines.append(f"{row['model']:<10} {row['batch']:>5} {row['mode']:<5}  "
                     f"{_rate(row.get('ours')):>28}  {_rate(row.get('torch')):>28}  "
                     f"{ratio:>10}  {paired:>6}")
    errors = [(row, fw) for row in rows for fw in ("ours", "torch")
              if "error" in row.get(fw, {})]
    for row, fw in errors:
        lines.append(f"  ! {fw} {row['model']} b{row['batch']} {row['mode']}: "
                     f"{row[fw]['error']}")
    return "\n".join(lines)


def _mb(cell, key="peak_rss_mb"):
    if not cell:
        return "-"
    if "error" in cell:
        return "error"
    return f"{cell[key]:,.0f}"


def rss_table(rows):
    """The peak-RSS table as text (MiB; 'after import' is the RSS before any model)."""
    header = (f"{'model':<10} {'batch':>5} {'steps':>5}  {'ours peak MiB':>13} "
              f"{'(import)':>8}  {'torch peak MiB':>14} {'(import)':>8}  {'ours/torch':>10}")
    lines = [header, "-" * len(header)]
    for row in rows:
        ratio = f"{row['ratio']:.2f}x" if "ratio" in row else "-"
        lines.append(f"{row['model']:<10} {row['batch']:>5} {row['steps']:>5}  "
                     f"{_mb(row.get('ours')):>13} "
                     f"{_mb(row.get('ours'), 'after_import_rss_mb'):>8}  "
                     f"{_mb(row.get('torch')):>14} "
                     f"{_mb(row.get('torch'), 'after_import_rss_mb'):>8}  {ratio:>10}")
    for row in rows:
        for fw in ("ours", "torch"):
            if "error" in row.get(fw, {}):
                lines.append(f"  ! {fw} {row['model']} b{row['batch']}: {row[fw]['error']}")
    return "\n".join(lines)


def _seconds(cell, key):
    if not cell:
        return "-"
    if "error" in cell:
        return "error"
    return f"{cell[key]:.2f}"


def first_step_table(rows):
    """First training step (import, first step, steady step) in seconds."""
    header = (f"{'model':<10} {'batch':>5}  {'ours import':>11} {'1st step cold':>13} "
              f"{'1st step warm':>13} {'steady':>7}  {'torch import':>12} {'1st step':>8} "
              f"{'steady':>7}")
    lines = [header, "-" * len(header)]
    for row in rows:
        cold, warm, theirs = row.get("ours_cold"), row.get("ours_warm"), row.get("torch")
        lines.append(f"{row['model']:<10} {row['batch']:>5}  "
                     f"{_seconds(warm, 'import_s'):>11} {_seconds(cold, 'first_step_s'):>13} "
                     f"{_seconds(warm, 'first_step_s'):>13} "
                     f"{_seconds(warm, 'steady_step_s'):>7}  "
                     f"{_seconds(theirs, 'import_s'):>12} "
                     f"{_seconds(theirs, 'first_step_s'):>8} "
                     f"{_seconds(theirs, 'steady_step_s'):>7}")
    for row in rows:
        for key in ("ours_cold", "ours_warm", "torch"):
            if "error" in (row.get(key) or {}):
                lines.append(f"  ! {key} {row['model']}: {row[key]['error']}")
    return "\n".join(lines)


def print_report(results):
    """All tables of one run."""
    print("\nThroughput (samples/s, median [min-max] over trials; ours/torch = ratio of "
          "medians; paired = median of per-trial ratios)")
    print(throughput_table(results["throughput"]))
    if results.get("rss"):
        print(f"\nPeak RSS of a training run in a separate process (MiB)")
        print(rss_table(results["rss"]))
    if results.get("first_step"):
        print("\nFirst training step, separate processes (seconds; ours with a fresh Numba "
              "cache dir: cold = compiling, warm = loaded from disk)")
        print(first_step_table(results["first_step"]))


# --------------------------------------------------------------------------- main runs

def run_benchmark(args):
    """The whole benchmark in this process; returns the results dict."""
    try:    # first: PyTorch imports NumPy, and tinygrad_cv.threads must set
        import tinygrad_cv  # noqa: F401   # OpenBLAS's environment before NumPy loads
    except Exception as exc:
        print(f"tinygrad_cv does not import ({exc}); showing PyTorch only")
        args.framework_list = [f for f in args.framework_list if f != "ours"]
    torch = common.import_torch() if "torch" in args.framework_list else None
    thread_setting = common.apply_thread_limits(args.threads, torch)
    info = common.machine_info(args.threads, args.device, torch)
    info["thread_setting"] = thread_setting
    common.print_machine_info(info)
    settings = {k: getattr(args, k) for k in ("quick", "model_list", "batch_list",
                                              "mode_list", "trials", "warmup",
                                              "trial_seconds", "rss_steps")}
    print(f"settings: {settings}\n")
    results = {"machine": info, "settings": settings, "throughput": [], "rss": [],
               "first_step": []}

    for name in args.model_list:
        for batch in args.batch_list:
            for mode in args.mode_list:
                row = measure_throughput(args, name, batch, mode, torch)
                results["throughput"].append(row)
                print(f"  measured {name} b{batch} {mode}: ours {_rate(row.get('ours'))}, "
                      f"torch {_rate(row.get('torch'))}", flush=True)
    if not args.no_rss:
        for name in args.model_list:
            for batch in args.batch_list:
                results["rss"].append(measure_rss(args, name, batch, torch is not None))
    if not args.no_compile:
        names = args.model_list
        if args.quick:  # the cold compile is the slow part; MnistCNN has the most kernels
            names = [n for n in names if n == "mnist_cnn"] or names[:1]
        for name in names:
            results["first_step"].append(
                measure_first_step(args, name, args.batch_list[0], torch is not None))
    print_report(results)
    return results


def run_malloc_both(args, argv):
    """Re-run the benchmark in two subprocesses: default malloc, then MALLOC_MMAP_MAX_=0."""
    forwarded = _strip_options(argv, flags=("--malloc-both",), with_value=("--json",))
    runs = []
    for label, value in (("default malloc", None), ("MALLOC_MMAP_MAX_=0", "0")):
        env = dict(os.environ)
        env.pop("MALLOC_MMAP_MAX_", None)
        if value is not None:
            env["MALLOC_MMAP_MAX_"] = value
        fd, path = tempfile.mkstemp(suffix=".json")
        os.close(fd)
        print(f"\n===================== {label} =====================", flush=True)
        subprocess.run([sys.executable, os.path.abspath(__file__), *forwarded,
                        "--json", path], env=env, check=False)
        with open(path) as f:
            text = f.read()
        os.unlink(path)
        if text:
            result = json.loads(text)
            result["malloc_setting"] = label
            runs.append(result)
    print("\n===================== both settings =====================")
    for result in runs:
        print(f"\n[{result['malloc_setting']}]")
        print(throughput_table(result["throughput"]))
    write_json({"runs": runs}, args.json)


def _strip_options(argv, flags, with_value):
    """argv without the given flags and without the given options and their values."""
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
            continue
        name = token.split("=", 1)[0]
        if name in flags:
            continue
        if name in with_value:
            skip = "=" not in token
            continue
        out.append(token)
    return out


def write_json(results, path):
    """Write results as indented JSON, creating the folder."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
    print(f"\nwrote {path}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.malloc_both:
        return run_malloc_both(args, argv)
    common.configure_threads(args.threads)  # before numpy/numba/torch are imported
    if args.rss_child:
        return rss_child(args)
    if args.first_step_child:
        return first_step_child(args)
    if args.profile:
        import profile_layers
        forwarded = ["--threads", str(args.threads), "--device", args.device]
        if args.quick:
            forwarded.append("--quick")
        return profile_layers.main(forwarded)
    results = run_benchmark(args)
    write_json(results, args.json)


if __name__ == "__main__":
    main()
