"""Rosenblatt's perceptron separating two MNIST digits (0 vs 1 by default).

    python examples/perceptron.py --digits 3 8
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np                                                # noqa: E402

import tinygrad_cv as tc                                          # noqa: E402
from tinygrad_cv.cli_args import (ArgumentParser, add_threads, add_version,  # noqa: E402
                                  apply_threads, digit, non_negative_int, positive_int)
from tinygrad_cv.datasets import MNIST                            # noqa: E402
from tinygrad_cv.errors import UserError, run_main                # noqa: E402
from tinygrad_cv.models import Perceptron                         # noqa: E402


def two_digits(dataset, a, b):
    """Images (N, 784) in [0, 1] and 0/1 labels (1 means digit b) of digits a and b."""
    images, labels = dataset.data, dataset.targets
    images = images.numpy() if hasattr(images, "numpy") else np.asarray(images)
    labels = labels.numpy() if hasattr(labels, "numpy") else np.asarray(labels)
    keep = (labels == a) | (labels == b)
    return images[keep].reshape(keep.sum(), -1) / 255.0, (labels[keep] == b).astype(np.int64)


def build_parser():
    parser = ArgumentParser(description="A perceptron separating two MNIST digits")
    parser.add_argument("--digits", type=digit, nargs=2, default=[0, 1], metavar=("A", "B"),
                        help="the two digits to separate (B is the positive class)")
    parser.add_argument("--epochs", type=positive_int, default=10,
                        help="passes over the training images")
    parser.add_argument("--seed", type=non_negative_int, default=1, help="random seed")
    parser.add_argument("--data-dir", default=None,
                        help="folder with the IDX .gz files (default: $TINYGRAD_CV_DATA, "
                             "then ~/.cache/tinygrad_cv; downloaded if missing)")
    add_threads(parser)
    add_version(parser)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    a, b = args.digits
    if a == b:
        raise UserError(f"--digits {a} {b}: the two digits must differ")
    apply_threads(args)
    tc.manual_seed(args.seed)
    x_train, y_train = two_digits(MNIST(args.data_dir, train=True), a, b)
    x_test, y_test = two_digits(MNIST(args.data_dir, train=False), a, b)
    print(f"{a} vs {b}: {len(x_train)} training and {len(x_test)} test images")
    model = Perceptron(in_features=784, epochs=args.epochs).fit(x_train, y_train, verbose=True)
    print(f"train accuracy {100 * model.score(x_train, y_train):.2f}%, "
          f"test accuracy {100 * model.score(x_test, y_test):.2f}%")


if __name__ == "__main__":
    sys.exit(run_main(main))
