"""Train the pytorch/examples MNIST CNN with tinygrad_cv: a port of `mnist/main.py`.

Same network, flags and defaults (Adadelta lr=1.0, StepLR gamma=0.7, 14 epochs, batch 64),
with imports changed; plus --device, --data-dir, --dataset, --limit, --threads and
--report. Ctrl-C or SIGTERM saves the best epoch's weights so far (mnist_cnn.safetensors
with --save-model, else mnist_cnn_interrupted.safetensors) and exits (130 / 143).

    python examples/mnist_cnn.py --epochs 1            # about a minute or two on 2 cores
    python examples/mnist_cnn.py --report reports/cnn  # + an HTML report with pictures
"""
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np                                                # noqa: E402

import tinygrad_cv as tc                                          # noqa: E402
from tinygrad_cv import optim, transforms                         # noqa: E402
from tinygrad_cv.cli_args import (ArgumentParser, add_device, add_threads,  # noqa: E402
                                  add_version, apply_threads, non_negative_int,
                                  positive_float, positive_int, require_device)
from tinygrad_cv.data import DataLoader, Subset                    # noqa: E402
from tinygrad_cv.errors import run_main                           # noqa: E402
from tinygrad_cv.datasets import MNIST, FashionMNIST              # noqa: E402
from tinygrad_cv.models import MnistCNN                           # noqa: E402
from tinygrad_cv.nn import functional as F                        # noqa: E402
from tinygrad_cv.optim.lr_scheduler import StepLR                 # noqa: E402
from tinygrad_cv.train import (CLASS_NAMES, DATASET_STATS, fit,  # noqa: E402
                               weights_metadata)

WEIGHTS = "mnist_cnn.safetensors"


def build_parser():
    parser = ArgumentParser(description="tinygrad_cv MNIST CNN (pytorch/examples port)")
    parser.add_argument("--batch-size", type=positive_int, default=64, metavar="N",
                        help="input batch size for training")
    parser.add_argument("--test-batch-size", type=positive_int, default=1000, metavar="N",
                        help="input batch size for testing")
    parser.add_argument("--epochs", type=positive_int, default=14, metavar="N",
                        help="number of epochs to train")
    parser.add_argument("--lr", type=positive_float, default=1.0, metavar="LR",
                        help="learning rate")
    parser.add_argument("--gamma", type=positive_float, default=0.7, metavar="M",
                        help="learning rate step gamma")
    parser.add_argument("--dry-run", action="store_true",
                        help="quickly check a single pass")
    parser.add_argument("--seed", type=non_negative_int, default=1, metavar="S",
                        help="random seed")
    parser.add_argument("--log-interval", type=positive_int, default=10, metavar="N",
                        help="batches between training-status lines, printed with "
                             "--no-progress (the bar shows the same; a log file written "
                             "without --no-progress gets one line per epoch)")
    parser.add_argument("--save-model", action="store_true",
                        help=f"save the model (with metadata) as {WEIGHTS}")
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
    parser.add_argument("--report", metavar="DIR", default=None,
                        help="write an HTML report (curves, confusion matrix, mistakes, "
                             "filters) into DIR (default: none)")
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
    train_set = Dataset(args.data_dir, train=True, download=True, transform=transform)
    test_set = Dataset(args.data_dir, train=False, transform=transform)
    if args.limit:
        train_set = Subset(train_set, np.arange(min(args.limit, len(train_set))))
        test_set = Subset(test_set, np.arange(min(args.limit, len(test_set))))
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    test_loader = DataLoader(test_set, batch_size=args.test_batch_size)

    model = MnistCNN().to(args.device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)

    metadata = weights_metadata("mnist_cnn", args.dataset)
    start = time.perf_counter()
    history, last = fit(model, train_loader, test_loader, optimizer, args.epochs, scheduler,
                        device=args.device, loss_fn=F.nll_loss,
                        log_interval=args.log_interval if args.no_progress else 0,
                        dry_run=args.dry_run, progress=False if args.no_progress else None,
                        mean=mean[0], std=std[0],
                        print_fn=lambda line: print(line, flush=True),
                        save_interrupted_to=WEIGHTS if args.save_model
                        else "mnist_cnn_interrupted.safetensors",
                        metadata=metadata)
    print(f"Test accuracy {100 * last.accuracy:.2f}% after {len(history)} epoch(s), "
          f"{time.perf_counter() - start:.0f} s in all")

    if args.save_model:
        tc.save(model.state_dict(), WEIGHTS,
                metadata=dict(metadata, epoch=len(history), test_accuracy=last.accuracy))
        print(f"saved {WEIGHTS}")
    if args.report:
        from tinygrad_cv.report import write_report
        path = write_report(args.report, history, last, model, CLASS_NAMES[args.dataset],
                            title=f"MnistCNN on {args.dataset}", details=vars(args))
        print(f"report: {path}")


if __name__ == "__main__":
    sys.exit(run_main(main))
