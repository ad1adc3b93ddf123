"""The config-style commands: `train CONFIG [--work-dir D] [--resume [CKPT]]
[--cfg-options k=v ...] [--launcher none|mpi]` and `test CONFIG CKPT`.

`tinygrad_cv/cli.py` adds these arguments to its parser; `cli_train.py` and
`cli_evaluate.py` call `train_config` / `test_config`; everything else about them lives
here."""
from __future__ import annotations

import ast
import os
import shlex
import sys

from ..errors import UserError



def add_config_arguments(parser, with_resume=True):
    """--work-dir, --cfg-options, --launcher (and --resume) on a subcommand's parser."""
    parser.add_argument("--work-dir", default=None, metavar="DIR",
                        help="with CONFIG: where checkpoints and metrics.jsonl go (default: "
                             "the config's work_dir, else work_dirs/<config name>)")
    if with_resume:
        parser.add_argument("--resume", nargs="?", const=True, default=False, metavar="CKPT",
                            help="with CONFIG: continue from CKPT, or without a path from the "
                                 "work dir's last checkpoint")
    parser.add_argument("--cfg-options", nargs="+", default=[], metavar="KEY=VALUE",
                        help="with CONFIG: override config keys, e.g. optimizer.lr=0.1 "
                             "train_dataloader.batch_size=128 (values are Python literals, "
                             "else strings)")
    parser.add_argument("--launcher", choices=("none", "mpi"), default="none",
                        help="with CONFIG: how the processes were started (mpi: under "
                             "mpiexec, with tinygrad_cv.distributed)")


def parse_cfg_options(items):
    """{"a.b": value} from ["a.b=value", ...]; values are Python literals when they parse."""
    options = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UserError(f"--cfg-options {item!r}: expected KEY=VALUE, e.g. optimizer.lr=0.1")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        options[key] = value
    return options


def load_config(path, options=()):
    from .config import Config
    cfg = Config.fromfile(path)
    if options:
        cfg.merge_from_dict(parse_cfg_options(options))
    return cfg


def _resume_command(args, work_dir, world_size=1):
    parts = [os.path.basename(sys.executable) if sys.executable else "python", "-m",
             "tinygrad_cv", "train", args.config, "--work-dir", work_dir, "--resume"]
    if args.launcher == "mpi":      # resume with as many ranks
        parts = ["mpiexec", "-n", str(world_size), *parts, "--launcher", "mpi"]
    if args.cfg_options:
        parts += ["--cfg-options", *args.cfg_options]
    return " ".join(shlex.quote(p) for p in parts)


def train_config(args):
    """`train CONFIG ...`: a Runner from the config, trained (resumed when asked)."""
    from .runner import Runner
    cfg = load_config(args.config, args.cfg_options)
    overrides = {"launcher": args.launcher}
    if args.work_dir:
        overrides["work_dir"] = args.work_dir
    if args.resume:
        overrides["resume"] = args.resume
        if isinstance(args.resume, str) and not os.path.isfile(args.resume):
            raise UserError(f"--resume {args.resume}: no such checkpoint file")
    device = getattr(args, "device", None)
    if device and device != "cpu":
        overrides["device"] = device
    runner = Runner.from_cfg(cfg, **overrides)
    runner.resume_hint = _resume_command(args, runner.work_dir, runner.dist.world_size)
    if runner.is_main_process:
        os.makedirs(runner.work_dir, exist_ok=True)
        cfg.dump(os.path.join(runner.work_dir, "config.json"))
    runner.train()
    best = next((h for h in runner.hooks if getattr(h, "best_path", None)), None)
    runner.log(f"done: {runner.epoch} epoch(s), {runner.iter} iteration(s); checkpoints in "
               f"{runner.work_dir}" + (f"; best {best.best_metric} {best.best_score:.4f} in "
                                       f"{best.best_path}" if best else ""))
    return 0


def test_config(args):
    """`test CONFIG CKPT`: the test (else val) loader's metrics for a checkpoint."""
    from .runner import Runner
    cfg = load_config(args.config, args.cfg_options)
    if "test_dataloader" not in cfg:
        if "val_dataloader" not in cfg:
            raise UserError(f"{args.config}: has neither test_dataloader nor val_dataloader")
        cfg["test_dataloader"] = cfg["val_dataloader"]
    if not os.path.isfile(args.checkpoint):
        raise UserError(f"{args.checkpoint}: no such checkpoint file")
    overrides = {"load_from": args.checkpoint, "launcher": args.launcher}
    if args.work_dir:
        overrides["work_dir"] = args.work_dir
    for key in ("train_dataloader", "val_dataloader"):
        cfg.pop(key, None)              # testing reads no training data
    runner = Runner.from_cfg(cfg, **overrides)
    metrics = runner.test()
    if not runner.is_main_process:      # launcher="mpi": rank 0 prints
        return 0
    for key, value in metrics.items():
        if isinstance(value, float):
            print(f"{key}: {value:.4f}")
        elif isinstance(value, int):
            print(f"{key}: {value}")
    return 0
