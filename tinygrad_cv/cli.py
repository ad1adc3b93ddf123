"""Command line: `python -m tinygrad_cv train | test | evaluate | predict | export` (also
`tinygrad-cv`).

    train     train a model on MNIST or Fashion-MNIST, optionally saving weights and an
              HTML report; `train CONFIG` trains a config file with the engine
    test      a config + a checkpoint -> its test metrics
    evaluate  a weights file -> test loss, accuracy and confusion matrix
    predict   a weights file (or, with --onnx, an exported model) + image files -> the
              class and probabilities of each image
    export    a weights file -> an ONNX model (with the weights' metadata), checked by
              running it in onnxruntime

A user's mistake (a missing or wrong file, an unknown device, weights of another
dataset) is one line `error: ...` and exit status 2; Ctrl-C or SIGTERM during `train`
saves the best weights so far and exits with 130 or 143 (see tinygrad_cv/errors.py).
"""
from __future__ import annotations

import sys

from . import models
from .cli_args import (ArgumentParser, add_device, add_threads, add_version, non_negative_int,
                       positive_float, positive_int)
from .cli_evaluate import cmd_evaluate, cmd_test
from .cli_export import batch_spec, cmd_export
from .cli_predict import cmd_predict
from .cli_train import DEFAULT_LR, cmd_train
from .cli_weights import WeightsInfo, model_from_weights, read_weights
from .engine.cli import add_config_arguments
from .errors import run_main
from .image_input import load_image
from .train import DATASET_STATS

__all__ = ["main", "build_parser", "load_image", "model_from_weights", "read_weights",
           "WeightsInfo"]
"""Each command lives in its own module: cli_train (train), cli_evaluate (evaluate,
test), cli_predict, cli_export; cli_weights reads weights files, cli_data the datasets,
cli_args holds the shared argparse pieces. This module is the parser and `main`."""


def build_parser():
    parser = ArgumentParser(prog="python -m tinygrad_cv", description=__doc__)
    add_version(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                help="train, test, evaluate, predict or export (each has its "
                                     "own --help)")

    def common(p, dataset_default):
        if dataset_default:
            p.add_argument("--dataset", choices=sorted(DATASET_STATS) + ["folder"],
                           default=dataset_default,
                           help="the dataset to train on (folder: your own images in "
                                "--data-dir, one folder per class)")
        else:
            p.add_argument("--dataset", choices=sorted(DATASET_STATS) + ["folder"], default=None,
                           help="the dataset the weights are for (default: the one recorded "
                                "in the weights file; mnist for files without metadata); "
                                "a different one than recorded is an error")
        p.add_argument("--data-dir", default=None,
                       help="folder with the IDX .gz files (default: $TINYGRAD_CV_DATA, "
                            "then ~/.cache/tinygrad_cv, downloading if missing); for "
                            "--dataset folder: the folder of class folders, or of train/ "
                            "and val/")
        add_device(p)
        add_threads(p)

    def weights_args(p):
        p.add_argument("weights", help="a safetensors weights file (from train --save)")
        p.add_argument("--model", choices=sorted(models.MODELS), default=None,
                       help="the model the weights are for (default: the recorded one; for "
                            "files without metadata, the first model they fit)")

    t = sub.add_parser("train", help="train a model",
                       description="Train a model, evaluating on the test set after each "
                                   "epoch.\nCtrl-C or SIGTERM saves the best epoch's weights "
                                   "so far (to --save, else\n<model>_interrupted.safetensors) "
                                   "and exits with status 130 or 143.")
    common(t, "mnist")
    t.add_argument("--model", choices=sorted(models.MODELS), default=None,
                   help="the network to train (default: mnist_cnn; small_cnn for --dataset "
                        "folder)")
    t.add_argument("--image-size", type=positive_int, default=64,
                   help="--dataset folder: images are resized and cropped to this size")
    t.add_argument("--val-fraction", type=positive_float, default=0.2,
                   help="--dataset folder without train/ and val/: the share of images held "
                        "out for validation (seeded by --seed)")
    t.add_argument("--workers", type=non_negative_int, default=2,
                   help="--dataset folder: worker processes decoding images (0: this one)")
    t.add_argument("--epochs", type=positive_int, default=1, help="passes over the training set")
    t.add_argument("--batch-size", type=positive_int, default=64, help="training batch size")
    t.add_argument("--test-batch-size", type=positive_int, default=1000,
                   help="evaluation batch size")
    t.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default="adadelta",
                   help="the optimizer (PyTorch's defaults but lr; sgd with momentum 0.9)")
    t.add_argument("--lr", type=positive_float, default=None,
                   help="learning rate (default: 1.0 adadelta, 0.01 sgd, 1e-3 adam/adamw)")
    t.add_argument("--gamma", type=positive_float, default=0.7,
                   help="StepLR decay of the learning rate per epoch")
    t.add_argument("--seed", type=non_negative_int, default=1, help="random seed")
    t.add_argument("--limit", type=positive_int, default=None, metavar="N",
                   help="use only the first N train and test images, for quick tries "
                        "(default: all)")
    t.add_argument("--save", metavar="PATH",
                   help="write the weights (safetensors, with metadata) here (default: not "
                        "saved, except on an interrupt)")
    t.add_argument("--report", metavar="DIR",
                   help="write an HTML report into DIR (default: none)")
    t.add_argument("--no-progress", action="store_true",
                   help="no progress bar (it is only drawn when stderr is a terminal anyway)")
    t.add_argument("config", nargs="?", default=None, metavar="CONFIG",
                   help="a config file (.py, .toml or .json, see configs/): train it with "
                        "the engine (checkpoints, resume, metrics file) instead of the flags")
    add_config_arguments(t)
    t.set_defaults(func=cmd_train)

    c = sub.add_parser("test", help="test a checkpoint of a config",
                       description="Evaluate CKPT (a checkpoint or weights file) on the "
                                   "config's test_dataloader (else val_dataloader).")
    c.add_argument("config", metavar="CONFIG", help="the config the checkpoint was trained with")
    c.add_argument("checkpoint", metavar="CKPT", help="a checkpoint from train CONFIG")
    add_config_arguments(c, with_resume=False)
    add_device(c)
    add_threads(c)
    c.set_defaults(func=cmd_test)

    e = sub.add_parser("evaluate", help="test accuracy of saved weights",
                       description="Test loss, accuracy and confusion matrix of a weights "
                                   "file on its dataset's test set.")
    weights_args(e)
    common(e, None)
    e.add_argument("--batch-size", type=positive_int, default=1000, help="evaluation batch size")
    e.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify image files",
                       description="Classify image files as MNIST's images were made: each "
                                   "is composited onto white\n(transparency), inverted when "
                                   "its background is light, cropped to its ink, scaled\n"
                                   "into a 20x20 box (Fashion-MNIST: 28x28) and centred by "
                                   "its centre of mass in 28x28.")
    weights_args(p)
    p.add_argument("images", nargs="*", help="image files (any format Pillow reads)")
    p.add_argument("--onnx", metavar="MODEL.onnx", default=None,
                   help="run this exported model in onnxruntime instead (give no weights "
                        "file then: every positional argument is an image)")
    common(p, None)
    p.set_defaults(func=cmd_predict)

    x = sub.add_parser("export", help="write a weights file's model as ONNX",
                       description="Write the model of a weights file as an ONNX model "
                                   "(the weights' metadata included,\nfor predict --onnx), "
                                   "then run it in onnxruntime, when installed, to check\n"
                                   "its outputs against ours. Needs the optional extra "
                                   "onnx.")
    weights_args(x)
    x.add_argument("output", metavar="OUT.onnx", help="the ONNX file to write")
    x.add_argument("--opset", type=positive_int, default=17,
                   help="the ONNX opset version (13 to the installed onnx's newest)")
    x.add_argument("--batch", type=batch_spec, default=None, metavar="dynamic|N",
                   help="the batch size: 'dynamic' (any batch, the default) or a fixed N")
    x.add_argument("--dataset", choices=sorted(DATASET_STATS), default=None,
                   help="the dataset the weights are for (default: the recorded one; mnist "
                        "for files without metadata)")
    add_threads(x)
    x.set_defaults(func=cmd_export)
    return parser


def _main(argv):
    args = build_parser().parse_args(argv)
    return args.func(args)


def main(argv=None):
    """The `python -m tinygrad_cv` / `tinygrad-cv` entry point; returns the exit status."""
    return run_main(_main, argv)


if __name__ == "__main__":
    sys.exit(main())
