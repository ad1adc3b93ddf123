"""Train a multi-layer perceptron (784-256-128-10 by default) on MNIST.

    python examples/mlp_mnist.py --epochs 3
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tinygrad_cv as tc                                          # noqa: E402
from tinygrad_cv import optim, transforms                         # noqa: E402
from tinygrad_cv.data import DataLoader                            # noqa: E402
from tinygrad_cv.datasets import MNIST, FashionMNIST              # noqa: E402
from tinygrad_cv.models import MLP                                # noqa: E402
from tinygrad_cv.train import CLASS_NAMES, DATASET_STATS, fit     # noqa: E402


def main():
    parser = argparse.ArgumentParser(description="tinygrad_cv MLP on MNIST")
    parser.add_argument("--hidden", type=int, nargs="+", default=[256, 128],
                        help="hidden layer sizes (default: 256 128)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=0.05, help="SGD learning rate")
    parser.add_argument("--momentum", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    parser.add_argument("--report", metavar="DIR", default=None)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()

    tc.manual_seed(args.seed)
    mean, std = DATASET_STATS[args.dataset]
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    Dataset = MNIST if args.dataset == "mnist" else FashionMNIST
    train_loader = DataLoader(Dataset(args.data_dir, train=True, transform=transform),
                              batch_size=args.batch_size, shuffle=True, seed=args.seed)
    test_loader = DataLoader(Dataset(args.data_dir, train=False, transform=transform),
                             batch_size=1000)

    model = MLP(hidden_sizes=tuple(args.hidden)).to(args.device)
    print(model)
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum)
    history, last = fit(model, train_loader, test_loader, optimizer, args.epochs,
                        device=args.device, progress=not args.no_progress,
                        mean=mean[0], std=std[0])
    if args.report:
        from tinygrad_cv.report import write_report
        print("report:", write_report(args.report, history, last, model,
                                      CLASS_NAMES[args.dataset], title="MLP", details=vars(args)))


if __name__ == "__main__":
    main()
