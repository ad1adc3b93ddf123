"""A tiny engine run for the resume tests: `python engine_run_script.py WORK_DIR
[--kill-at K] [--resume] [--sleep-at K] [--accum N]`; prints nothing on success.

A small MLP with dropout on a shuffled TensorDataset with a random transform-free
pipeline, SGD with momentum, a StepLR per epoch, a checkpoint every 2 iterations.
`--kill-at K` leaves with os._exit(9) right after iteration K's checkpoint hooks ran
(as SIGKILL would: nothing flushed, nothing cleaned up)."""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import tinygrad_cv as tc  # noqa: E402
from tinygrad_cv import nn  # noqa: E402
from tinygrad_cv.data import DataLoader, Dataset, TensorDataset  # noqa: E402
from tinygrad_cv.engine import CheckpointHook, Hook, Runner  # noqa: E402


class NoisySamples(Dataset):
    """Samples read one at a time (no get_batch), each with fresh noise drawn from
    tinygrad_cv's generator: a stand-in for a random augmentation."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.x)

    def __getitem__(self, index):
        return tc.tensor(self.x[index]) + 0.1 * tc.randn(self.x.shape[1]), int(self.y[index])


class Killer(Hook):
    priority = "LOWEST"

    def __init__(self, kill_at, sleep_at):
        self.kill_at, self.sleep_at = kill_at, sleep_at

    def after_train_iter(self, runner, batch_idx, data_batch, outputs):
        if runner.iter == self.kill_at:
            os._exit(9)
        if runner.iter == self.sleep_at:
            print("READY", flush=True)
            deadline = time.monotonic() + 30
            while runner._stop_signal is None and time.monotonic() < deadline:
                time.sleep(0.02)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("work_dir")
    parser.add_argument("--kill-at", type=int, default=-1)
    parser.add_argument("--sleep-at", type=int, default=-1)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--accum", type=int, default=1)
    parser.add_argument("--noisy", action="store_true",
                        help="a per-sample dataset adding random noise to every sample")
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args()
    rs = np.random.RandomState(0)
    x = rs.randn(40, 6).astype(np.float32)
    y = rs.randint(0, 3, 40)
    data = NoisySamples(x, y) if args.noisy else TensorDataset(tc.tensor(x), tc.tensor(y))
    tc.manual_seed(3)
    model = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Dropout(0.3), nn.Linear(12, 3))
    runner = Runner(model, args.work_dir,
                    train_dataloader=DataLoader(data, batch_size=8, shuffle=True,
                                                num_workers=args.workers),
                    val_dataloader=DataLoader(data, batch_size=20),
                    optimizer=dict(type="SGD", lr=0.1, momentum=0.9),
                    param_scheduler=dict(type="StepLR", step_size=1, gamma=0.7),
                    max_epochs=3, seed=5, resume=args.resume, accumulative_counts=args.accum,
                    default_hooks=[CheckpointHook(interval=2, by_epoch=False, save_best="auto")],
                    hooks=[Killer(args.kill_at, args.sleep_at)],
                    resume_hint=f"engine_run_script.py {args.work_dir} --resume")
    runner.train()
    tc.save(model.state_dict(), os.path.join(args.work_dir, "final.safetensors"))


if __name__ == "__main__":
    from tinygrad_cv.errors import run_main
    sys.exit(run_main(lambda argv: main()))
