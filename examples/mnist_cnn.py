"""Train the pytorch/examples MNIST CNN with tinygrad_cv: a port of `mnist/main.py`.

Same network, flags and defaults (Adadelta lr=1.0, StepLR gamma=0.7, 14 epochs, batch 64),
with imports changed; plus --device, --data-dir, --dataset and --report.

    python examples/mnist_cnn.py --epochs 1            # about a minute or two on 2 cores
    python examples/mnist_cnn.py --report reports/cnn  # + an HTML report with pictures
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tinygrad_cv as tc                                          # noqa: E402
from tinygrad_cv import optim, transforms                         # noqa: E402
from tinygrad_cv.data import DataLoader                            # noqa: E402
from tinygrad_cv.datasets import MNIST, FashionMNIST              # noqa: E402
from tinygrad_cv.models import MnistCNN                           # noqa: E402
from tinygrad_cv.nn import functional as F                        # noqa: E402
from tinygrad_cv.optim.lr_scheduler import StepLR                 # noqa: E402
from tinygrad_cv.train import CLASS_NAMES, DATASET_STATS, fit     # noqa: E402


def main():
    parser = argparse.ArgumentParser(description="tinygrad_cv MNIST CNN (pytorch/examples port)")
    parser.add_argument("--batch-size", type=int, default=64, metavar="N",
                        help="input batch size for training (default: 64)")
    parser.add_argument("--test-batch-size", type=int, default=1000, metavar="N",
                        help="input batch size for testing (default: 1000)")
    parser.add_argument("--epochs", type=int, default=14, metavar="N",
                        help="number of epochs to train (default: 14)")
    parser.add_argument("--lr", type=float, default=1.0, metavar="LR",
                        help="learning rate (default: 1.0)")
    parser.add_argument("--gamma", type=float, default=0.7, metavar="M",
                        help="learning rate step gamma (default: 0.7)")
    parser.add_argument("--dry-run", action="store_true",
                        help="quickly check a single pass")
    parser.add_argument("--seed", type=int, default=1, metavar="S",
                        help="random seed (default: 1)")
    parser.add_argument("--log-interval", type=int, default=10, metavar="N",
                        help="batches between training-status lines (default: 10); the lines "
                             "are printed with --no-progress, the progress bar shows the same")
    parser.add_argument("--save-model", action="store_true",
                        help="save the model as mnist_cnn.safetensors")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--data-dir", default=None,
                        help="folder with the IDX .gz files (default: $TINYGRAD_CV_DATA, "
                             "then ~/.cache/tinygrad_cv; downloaded if missing)")
    parser.add_argument("--dataset", choices=["mnist", "fashion-mnist"], default="mnist")
    parser.add_argument("--report", metavar="DIR", default=None,
                        help="write an HTML report (curves, confusion matrix, mistakes, "
                             "filters) into DIR")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args()

    tc.manual_seed(args.seed)
    mean, std = DATASET_STATS[args.dataset]
    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    Dataset = MNIST if args.dataset == "mnist" else FashionMNIST
    train_set = Dataset(args.data_dir, train=True, download=True, transform=transform)
    test_set = Dataset(args.data_dir, train=False, transform=transform)
    train_loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, seed=args.seed)
    test_loader = DataLoader(test_set, batch_size=args.test_batch_size)

    model = MnistCNN().to(args.device)
    optimizer = optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)

    start = time.perf_counter()
    history, last = fit(model, train_loader, test_loader, optimizer, args.epochs, scheduler,
                        device=args.device, loss_fn=F.nll_loss,
                        log_interval=args.log_interval if args.no_progress else 0,
                        dry_run=args.dry_run, progress=not args.no_progress,
                        mean=mean[0], std=std[0])
    print(f"Test accuracy {100 * last.accuracy:.2f}% after {len(history)} epoch(s), "
          f"{time.perf_counter() - start:.0f} s in all")

    if args.save_model:
        tc.save(model.state_dict(), "mnist_cnn.safetensors")
        print("saved mnist_cnn.safetensors")
    if args.report:
        from tinygrad_cv.report import write_report
        path = write_report(args.report, history, last, model, CLASS_NAMES[args.dataset],
                            title=f"MnistCNN on {args.dataset}", details=vars(args))
        print(f"report: {path}")


if __name__ == "__main__":
    main()
