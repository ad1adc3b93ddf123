"""Train a multi-layer perceptron (784-256-128-10 by default) on MNIST.

    python examples/mlp_mnist.py --epochs 3

Ctrl-C or SIGTERM saves the best epoch's weights so far (to --save, else
mlp_interrupted.safetensors) and exits (130 / 143).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np                                                # noqa: E402

import tinygrad_cv as tc                                          # noqa: E402
from tinygrad_cv import optim, transforms                         # noqa: E402
from tinygrad_cv.cli_args import (ArgumentParser, add_device, add_threads,  # noqa: E402
                                  add_version, apply_threads, non_negative_float,
                                  non_negative_int, positive_float, positive_int,
                                  require_device)
from tinygrad_cv.data import DataLoader, Subset                    # noqa: E402
from tinygrad_cv.datasets import MNIST, FashionMNIST              # noqa: E402
from tinygrad_cv.errors import run_main                           # noqa: E402
from tinygrad_cv.models import MLP                                # noqa: E402
from tinygrad_cv.train import (CLASS_NAMES, DATASET_STATS, fit,   # noqa: E402
                               weights_metadata)


def build_parser():
    parser = ArgumentParser(description="tinygrad_cv MLP on MNIST")
    parser.add_argument("--hidden", type=positive_int, nargs="+", default=[256, 128],
                        metavar="SIZE", help="hidden layer sizes")
    parser.add_argument("--epochs", type=positive_int, default=3, help="number of epochs")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="training batch size")
    parser.add_argument("--lr", type=positive_float, default=0.05, help="SGD learning rate")
    parser.add_argument("--momentum", type=non_negative_float, default=0.9, help="SGD momentum")
    parser.add_argument("--seed", type=non_negative_int, default=1, help="random seed")
    add_device(parser)
    add_threads(parser)
    parser.add_argument("--data-dir", default=None,
                        help="folder with the IDX .gz files (default: $TINYGRAD_CV_DATA, "
                             "then ~/.cache/tinygrad_cv; downloaded if missing)")
    parser.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist",
                        help="the dataset to train on")
    parser.add_argument("--limit", type=positive_int, default=None, metavar="N",
                        help="use only the first N train and test images, for quick tries "
                             "(default: all)")
    parser.add_argument("--save", metavar="PATH", default=None,
                        help="write the weights (safetensors, with metadata) here (default: "
                             "not saved, except on an interrupt)")
    parser.add_argument("--report", metavar="DIR", default=None,
                        help="write an HTML report into DIR (default: none)")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bar (it is only drawn when stderr is a terminal)")
    add_version(parser)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    require_device(args.device)
    apply_threads(args)

    tc.manual_seed(args.seed)
    mean, std = DATASET_STATS[args.dataset]
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    Dataset = MNIST if args.dataset == "mnist" else FashionMNIST
    train_set = Dataset(args.data_dir, train=True, transform=transform)
    test_set = Dataset(args.data_dir, train=False, transform=transform)
    if args.limit:
        train_set = Subset(train_set, np.arange(min(args.limit, len(train_set))))
        test_set = Subset(test_set, np.arange(min(args.limit, len(test_set))))
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    test_loader = DataLoader(test_set, batch_size=1000)

    model_args = {"hidden_sizes": list(args.hidden)}
    model = MLP(**model_args).to(args.device)
    print(model)
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    metadata = weights_metadata("mlp", args.dataset, model_args)
    history, last = fit(model, train_loader, test_loader, optimizer, args.epochs,
                        device=args.device, progress=False if args.no_progress else None,
                        mean=mean[0], std=std[0], print_fn=lambda line: print(line, flush=True),
                        save_interrupted_to=args.save or "mlp_interrupted.safetensors",
                        metadata=metadata)
    if args.save:
        tc.save(model.state_dict(), args.save,
                metadata=dict(metadata, epoch=len(history), test_accuracy=last.accuracy))
        print(f"weights saved to {args.save}")
    if args.report:
        from tinygrad_cv.report import write_report
        print("report:", write_report(args.report, history, last, model,
                                      CLASS_NAMES[args.dataset], title="MLP", details=vars(args)))


if __name__ == "__main__":
    sys.exit(run_main(main))
