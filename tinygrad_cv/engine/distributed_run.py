"""What `Runner(launcher="mpi")` does differently from a single process, in one place.

The Runner calls `parallel_run(runner)` once, at the end of its construction, and then
the returned object at a few points of its loop. `SingleProcessRun` (launcher="none")
does nothing at those points; `DistributedRun` (launcher="mpi", under mpiexec) does:

- construction: every rank takes rank 0's seed; the model (already on its device) is
  wrapped in `nn.parallel.DistributedDataParallel`, which broadcasts rank 0's weights;
  the train loader is rebuilt on a `DistributedSampler` (shuffled with the seed and the
  epoch, padded as torch's; the config's batch size is the per-rank batch size, as
  mmengine and torch), the val and test loaders on an unpadded split (rank r takes
  samples r, r + N, ...: every sample is evaluated exactly once, so the summed metric
  counts are the whole dataset's); then each rank reseeds its own random streams from
  (seed, rank), so ranks draw different dropout masks and augmentations.
- `runner.model` stays the plain module: checkpoints, hooks and EMA read and load its
  state dict (no `module.` prefix); training forwards go through `train_model` (the
  DDP wrapper), and gradient-accumulation steps that do not step run under `no_sync()`.
- before each training epoch: `sampler.set_epoch(epoch)`; before each evaluation: rank
  0's buffers are broadcast (BatchNorm statistics drift per rank between DDP forwards),
  so every rank evaluates the weights rank 0 saves.
- checkpoints: every rank's random states (and, in the middle of a gradient
  accumulation, its local gradients) are gathered into rank 0's checkpoint under
  `ranks`; on resume every rank reads the same file and takes its own entry back, so a
  resumed N-rank run continues each rank's streams and ends bit-identical to an
  uninterrupted one. Rank 0 writes; every rank waits at a barrier after the write.
- stop signals: after every step the ranks agree (an allreduce) whether any of them got
  SIGINT/SIGTERM, so all stop after the same step, save one checkpoint and exit alike.
- failures: an exception leaving `train()`/`test()` on one rank (other than that agreed
  stop) prints one line naming the rank and ends the whole job (MPI_Abort) with the CLI's
  status for it (2 for a usage error, 128 + signal for a second signal, 1 otherwise),
  instead of leaving the other ranks waiting for it.
"""
from __future__ import annotations

import contextlib
import io
import sys
import traceback

import numpy as np

from ..data import DataLoader, DistributedSampler, Sampler
from ..errors import Interrupted, UserError, describe_os_error
from . import rng


class SingleProcessRun:
    """launcher="none": every call point is the identity."""

    def __init__(self, runner):
        self.runner = runner

    @property
    def train_model(self):
        return self.runner.model

    def seed_rank_streams(self):
        pass

    def gradient_sync(self, stepping):
        return contextlib.nullcontext()

    def before_train_epoch(self, epoch):
        pass

    def before_evaluate(self):
        pass

    def agree_on_stop(self, signum):
        return signum

    def gather_rank_states(self, ckpt):
        return ckpt

    def rank_view(self, ckpt):
        return ckpt

    def failure_guard(self):
        return contextlib.nullcontext()


class RankShardSampler(Sampler):
    """Samples rank, rank + world_size, ... of a dataset of `length`: an unpadded split
    for evaluation (DistributedSampler pads, which would count some samples twice)."""

    def __init__(self, length, rank, world_size):
        self.length, self.rank, self.world_size = int(length), int(rank), int(world_size)

    def __iter__(self):
        return iter(range(self.rank, self.length, self.world_size))

    def __len__(self):
        return len(range(self.rank, self.length, self.world_size))


def rank_seed(seed, rank, stream=0):
    """A 32-bit seed for rank `rank`'s own random streams, derived from the run's seed."""
    return int(np.random.SeedSequence([int(seed), int(rank), int(stream)])
               .generate_state(1, np.uint32)[0])


def _loader_arguments(loader):
    """DataLoader keywords that rebuild `loader` around another sampler."""
    return dict(batch_size=loader.batch_size, num_workers=loader.num_workers,
                collate_fn=loader.collate_fn, pin_memory=loader.pin_memory,
                drop_last=loader.drop_last, timeout=loader.timeout,
                worker_init_fn=loader.worker_init_fn,
                multiprocessing_context=loader.multiprocessing_context,
                prefetch_factor=loader.prefetch_factor,
                persistent_workers=loader.persistent_workers,
                pin_memory_device=loader.pin_memory_device, in_order=loader.in_order)


def _check_splittable(loader, where):
    if not isinstance(loader, DataLoader):
        raise UserError(f"launcher='mpi': the {where} loader must be a tinygrad_cv "
                        f"DataLoader to be split over the ranks, got {type(loader).__name__}")
    if getattr(loader, "_user_batch_sampler", False):
        own = type(loader.batch_sampler).__name__
    elif not getattr(loader, "_default_sampler", True):
        own = type(loader.sampler).__name__
    else:
        return
    raise UserError(f"launcher='mpi': the {where} loader has its own {own}, which cannot be "
                    f"split over the ranks; give it shuffle=True or False (it then gets a "
                    f"DistributedSampler) or a DistributedSampler")


def train_loader_for_rank(loader, rank, world_size, seed):
    """`loader` on a DistributedSampler (kept as it is when it already has one)."""
    if loader is None or isinstance(getattr(loader, "sampler", None), DistributedSampler):
        return loader
    _check_splittable(loader, "train")
    sampler = DistributedSampler(loader.dataset, num_replicas=world_size, rank=rank,
                                 shuffle=loader.shuffle, seed=seed)
    generator = None
    if loader.generator is not None:   # its own generator (worker seeds): one per rank
        generator = np.random.default_rng(rank_seed(seed, rank, stream=1))
    return DataLoader(loader.dataset, sampler=sampler, generator=generator,
                      **_loader_arguments(loader))


def eval_loader_for_rank(loader, rank, world_size, where):
    """`loader` on this rank's unpadded share of its dataset (in dataset order)."""
    if loader is None:
        return None
    if not isinstance(getattr(loader, "sampler", None), DistributedSampler):
        _check_splittable(loader, where)
    sampler = RankShardSampler(len(loader.dataset), rank, world_size)
    return DataLoader(loader.dataset, sampler=sampler, generator=loader.generator,
                      **_loader_arguments(loader))


def _encode_state(state) -> bytes:
    from ..serialization import save
    buffer = io.BytesIO()
    save(state, buffer)
    return buffer.getvalue()


def _decode_state(payload: bytes):
    from ..serialization import load
    return load(io.BytesIO(payload))


class DistributedRun:
    """launcher="mpi": see the module docstring."""

    def __init__(self, runner):
        from ..nn.parallel import DistributedDataParallel
        self.process = process = runner.dist
        self.rank, self.world_size = process.rank, process.world_size
        self.agreed_stop = False
        with self.failure_guard():
            runner.seed = process.broadcast_int(runner.seed)
            self.train_model = DistributedDataParallel(runner.model)
            runner.train_dataloader = train_loader_for_rank(
                runner.train_dataloader, self.rank, self.world_size, runner.seed)
            runner.val_dataloader = eval_loader_for_rank(
                runner.val_dataloader, self.rank, self.world_size, "val")
            runner.test_dataloader = eval_loader_for_rank(
                runner.test_dataloader, self.rank, self.world_size, "test")
        self.runner = runner
        self.seed_rank_streams()

    def seed_rank_streams(self):
        """Each rank's own random streams, from (seed, rank): ranks draw different dropout
        masks and augmentations (called again by `Runner.from_cfg` after it restores the
        streams where building the model left them)."""
        rng.seed_everything(rank_seed(self.runner.seed, self.rank))

    # ------------------------------------------------------------------ training
    def gradient_sync(self, stepping):
        """No gradient averaging in accumulation steps that do not step the optimizer."""
        return contextlib.nullcontext() if stepping else self.train_model.no_sync()

    def before_train_epoch(self, epoch):
        sampler = getattr(self.runner.train_dataloader, "sampler", None)
        if isinstance(sampler, DistributedSampler):
            sampler.set_epoch(epoch)

    def before_evaluate(self):
        from ..distributed.collectives import broadcast_tensors
        buffers = list(self.runner.model.buffers())
        if buffers and self.world_size > 1:
            broadcast_tensors(buffers, 0, "launcher='mpi': broadcasting rank 0's buffers "
                                          "before evaluation")

    def agree_on_stop(self, signum):
        """The stop signal any rank got (the largest number), or None: every rank gets
        the same answer, so all stop after the same step."""
        agreed = self.process.max(signum or 0)
        if agreed:
            self.agreed_stop = True
            return agreed
        return None

    # ------------------------------------------------------------------ checkpoints
    def gather_rank_states(self, ckpt):
        """Add every other rank's random states (and accumulated gradients) to rank 0's
        checkpoint, as `ckpt["ranks"][str(rank)]`. Every rank must call it."""
        mine = b""
        if self.rank != 0:
            mine = _encode_state({"rng": ckpt["rng"], "epoch_rng": ckpt.get("epoch_rng"),
                                  "grads": ckpt.get("grads", {})})
        everyone = self.process.all_gather_bytes(
            mine, "launcher='mpi': gathering every rank's random states for the checkpoint")
        if self.rank == 0:
            ckpt["ranks"] = {str(r): _decode_state(payload)
                             for r, payload in enumerate(everyone) if r != 0}
        return ckpt

    def rank_view(self, ckpt):
        """The checkpoint as this rank saved it: its own random states and gradients."""
        if self.rank == 0:
            return ckpt
        own = ckpt.get("ranks", {}).get(str(self.rank))
        if own is None:
            raise UserError(f"launcher='mpi': the checkpoint has no random states for rank "
                            f"{self.rank} (it was saved by fewer ranks)")
        view = dict(ckpt, rng=own["rng"], epoch_rng=own.get("epoch_rng"))
        view.pop("grads", None)
        if own.get("grads"):
            view["grads"] = own["grads"]
        return view

    # ------------------------------------------------------------------ failures
    @contextlib.contextmanager
    def failure_guard(self):
        """End the whole job when this rank fails alone (see the module docstring)."""
        try:
            yield
        except BaseException as exc:
            if isinstance(exc, Interrupted) and self.agreed_stop:
                raise                         # every rank stops here, saved and agreed
            if isinstance(exc, SystemExit) and exc.code in (None, 0):
                raise
            from ..distributed.faults import abort_job
            from ..distributed.group import current_group
            status, reason = _failure(exc)
            abort_job(current_group(), status, reason)
            raise


def _failure(exc):
    """(exit status, one-line reason) for an exception, as the CLI would report it."""
    if isinstance(exc, UserError):
        return 2, f"error: {exc}"
    if isinstance(exc, OSError):
        return 2, f"error: {describe_os_error(exc)}"
    if isinstance(exc, Interrupted):
        return exc.exit_status, exc.message
    if isinstance(exc, KeyboardInterrupt):
        return 130, "interrupted by SIGINT"
    if isinstance(exc, SystemExit):
        return exc.code if isinstance(exc.code, int) else 1, f"exited with {exc.code!r}"
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    return 1, f"{type(exc).__name__}: {exc}"


def parallel_run(runner):
    """The run object for the Runner's launcher (see the module docstring)."""
    if runner.launcher == "none":
        return SingleProcessRun(runner)
    return DistributedRun(runner)
