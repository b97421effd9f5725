"""The worker side of data-parallel training: one shard, one model, kept for the whole run.

Every engine (local, Dask, Spark) runs exactly this code next to its shard, so engines
differ in where the work happens, never in what is computed.
"""

from __future__ import annotations

import logging
import os
import resource

import numpy as np
from threadpoolctl import ThreadpoolController

from nncompare.clocks import Reading, Span, busy_threads, process_runqueue_s, thread_clocks
from nncompare.idx import scale_pixels
from nncompare.job import ModelSpec
from nncompare.model import bind_flat, make_model, prime
from nncompare.rounds import RoundPosition, ShardUpdate

#: Set in every worker process an engine starts (Dask's nannies, Spark's executors) before numpy
#: is imported. numpy asks the kernel for transparent huge pages for arrays of 4 MB or more; on
#: some VMs a fresh huge page costs far more than 512 small ones, which made placing a shard slow
#: at random, while a steady epoch ran the same either way.
WORKER_ENV = {"NUMPY_MADVISE_HUGEPAGE": "0"}

_controller: ThreadpoolController | None = None


def blas_threads(cores: int):
    """A context that limits BLAS to ``cores`` threads.

    The controller is built once per process: ``threadpool_limits()`` rescans the loaded
    libraries on every call (about 2.5 ms here, 1 % of an epoch of a 1,000-sample shard).
    """
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=cores, user_api="blas")


def worker_id() -> str:
    """``host:pid`` of this process: how updates say where they were computed."""
    return f"{os.uname().nodename}:{os.getpid()}"


def peak_rss_bytes() -> int:
    """This process image's peak resident set size.

    ``VmHWM`` from /proc first: ``ru_maxrss`` is wrong for spawned workers (Dask's, Spark's
    Python workers), because Linux folds the forking parent's high-water mark into it at
    exec, so a worker spawned by a driver holding the whole dataset reports the driver's
    peak (595 MB where the worker itself peaked at 303 MB).
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def warn_if_batch_clipped(spec: ModelSpec, shard_sizes: list[int], rounds_per_epoch: int) -> None:
    """Say once per run (the driver calls it at placement) what scikit-learn said every round and shard:
    the batch is larger than a shard's rows in a round, so each round trains on one batch of all of them."""
    smallest = min(shard_sizes) // rounds_per_epoch  # the rows of a shard's smallest round
    if spec.batch_size > smallest:
        logging.getLogger("nncompare.training").warning(
            "--batch-size %d is more than the %d rows a shard trains on in a round; scikit-learn clips the "
            "batch to those rows in every round (fewer workers or a smaller --batch-size avoid it)",
            spec.batch_size,
            smallest,
        )


class ShardTrainer:
    """Holds one shard and its ``MLPClassifier``; trains one round per call, at the position it is given.

    A round is one epoch over the shard (``position.per_epoch`` 1) or one of ``per_epoch`` equal
    slices of the epoch's permutation. The trainer keeps no count of its own: the training run
    owns the rounds' positions, and a trainer that replaces a lost one simply receives the
    round it joins at, on every engine alike. It draws the epoch's permutation at the first
    round of an epoch, or at the first round it trains when it joins mid-epoch, so it ends the
    epoch with its siblings. The model keeps its optimiser state between rounds; only its
    weights are replaced by the average the driver sends. ``x`` may be the shard's uint8 pixels
    as an engine sent them: they are scaled here, as the loader does.
    """

    def __init__(
        self,
        shard: int,
        x: np.ndarray,
        y: np.ndarray,
        classes: np.ndarray,
        spec: ModelSpec,
        cores: int = 1,
        before_round=None,
    ):
        if x.dtype == np.uint8:
            x = scale_pixels(x)
        self.shard, self.x, self.y, self.classes = shard, x, y, classes
        self.before_round = before_round
        self.spec, self.cores = spec, cores
        self.model = make_model(spec)
        self.flat: np.ndarray | None = None
        self.worker = worker_id()
        self._order: np.ndarray | None = None
        self._epoch_loss = 0.0
        self._epoch_seen = 0
        self._process_runqueue_at_end: float | None = None

    @property
    def n_samples(self) -> int:
        return len(self.y)

    def _fit(self, x, y) -> None:
        # scikit-learn clips a batch larger than the rows it is given, with a warning on every call
        # (thousands in a run: once per round and shard); clip as it would, and let the driver say it
        # once (warn_if_batch_clipped)
        self.model.batch_size = min(self.spec.batch_size, len(y))
        if self.flat is None:
            self.model.partial_fit(x, y, classes=self.classes)
            self.flat = bind_flat(self.model)
        else:
            self.model.partial_fit(x, y)

    def train_round(self, weights: np.ndarray | None, position: RoundPosition) -> ShardUpdate:
        """Load ``weights`` (None on the first round: keep the seeded initialisation) and train the round."""
        arrived = thread_clocks()
        between = 0.0
        if self._process_runqueue_at_end is not None:
            between = max(0.0, process_runqueue_s(arrived) - self._process_runqueue_at_end)
        if self.before_round is not None:
            self.before_round(self.shard, position)
        if weights is not None:
            if self.flat is None:
                self.flat = prime(self.model, self.x, self.y, self.classes)
            self.flat[...] = weights
        start = Reading.now()
        with blas_threads(self.cores):
            if position.per_epoch == 1:
                self._fit(self.x, self.y)
                n, loss = self.n_samples, float(self.model.loss_)
            else:
                n, loss = self._train_slice(position)
        span = Span.between(start, Reading.now())
        ended = thread_clocks()
        self._process_runqueue_at_end = process_runqueue_s(ended)
        return ShardUpdate(
            self.shard,
            self.flat.copy(),
            n,
            loss,
            span.wall_s,
            peak_rss_bytes(),
            self.worker,
            position.index == position.per_epoch - 1,
            compute_cpu_s=span.cpu_s,
            compute_runqueue_s=span.runqueue_s,
            between_runqueue_s=between,
            compute_threads=busy_threads(arrived, ended),
        )

    def _train_slice(self, position: RoundPosition) -> tuple[int, float]:
        """Slice ``position.index`` of the epoch's permutation; the loss so far this epoch, per sample."""
        if position.index == 0 or self._order is None:
            self._order = self.model.random_state.permutation(self.n_samples)
            self._epoch_loss, self._epoch_seen = 0.0, 0
        idx = np.array_split(self._order, position.per_epoch)[position.index]
        if len(idx):
            self._fit(self.x[idx], self.y[idx])
            self._epoch_loss += float(self.model.loss_) * len(idx)
            self._epoch_seen += len(idx)
        return len(idx), self._epoch_loss / self._epoch_seen if self._epoch_seen else float("nan")
