"""The worker side of data-parallel training: one shard, one model, kept for the whole run.

Every engine (local, Dask, Spark) runs exactly this code next to its shard, so engines
differ in where the work happens, never in what is computed.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass

import numpy as np
from threadpoolctl import ThreadpoolController

from nncompare.clocks import Reading, Span, busy_threads, process_runqueue_s, thread_clocks
from nncompare.idx import scale_pixels
from nncompare.job import ModelSpec
from nncompare.model import bind_flat, make_model, prime

#: Set in every worker process an engine starts (Dask's nannies, Spark's executors) before numpy
#: is imported. numpy asks the kernel for transparent huge pages for arrays of 4 MB or more; on
#: this project's VMs a fresh huge page sometimes costs far more than 512 small ones (scaling a
#: 30k-image shard to float32: 0.15-0.38 s in some fresh processes, 0.07-0.09 s with small pages
#: every time), while a steady epoch ran the same either way (docs/benchmarks.md, issue 13).
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


@dataclass(frozen=True)
class RoundPosition:
    """Where a round stands in the run; the training run owns this count, engines pass it on."""

    number: int  #: 1-based, counted over the whole run
    epoch: int  #: 1-based
    index: int  #: 0-based position within the epoch
    per_epoch: int = 1  #: rounds per epoch

    @classmethod
    def of(cls, number: int, per_epoch: int) -> RoundPosition:
        """The position of round ``number`` (1-based) when an epoch has ``per_epoch`` rounds."""
        return cls(number, (number - 1) // per_epoch + 1, (number - 1) % per_epoch, per_epoch)


@dataclass
class ShardUpdate:
    """What a worker returns after a round: new weights plus its own measurements.

    ``compute_s``, ``compute_cpu_s`` and ``compute_runqueue_s`` are the wall, on-CPU and
    waiting-for-a-CPU seconds of the round's ``partial_fit`` on the thread that ran it.
    ``between_runqueue_s`` is what all the worker process's threads waited for a CPU from the
    end of its previous round's ``partial_fit`` to the start of this one's: the reply going out,
    the new weights coming in and the call reaching the trainer, the worker's part of the
    round trip (0.0 on a trainer's first round, which has no previous one).
    ``compute_threads`` is how many of the worker process's threads computed during the call
    (:func:`~nncompare.clocks.busy_threads`): ``cores`` when BLAS used the cores the worker was
    given, 1 when it ran on the calling thread alone.
    """

    shard: int
    weights: np.ndarray
    n_samples: int
    loss: float
    compute_s: float
    peak_rss_bytes: int
    worker: str
    epoch_end: bool = True
    compute_cpu_s: float = 0.0
    compute_runqueue_s: float = 0.0
    between_runqueue_s: float = 0.0
    compute_threads: int = 0


class ShardTrainer:
    """Holds one shard and its ``MLPClassifier``; trains one round per call.

    A round is one epoch over the shard (``rounds_per_epoch=1``) or one of ``rounds_per_epoch``
    equal slices of the epoch's permutation. The model keeps its optimiser state between
    rounds; only its weights are replaced by the average the driver sends. ``x`` may be the
    shard's uint8 pixels as an engine sent them: they are scaled here, as the loader does.
    """

    def __init__(
        self,
        shard: int,
        x: np.ndarray,
        y: np.ndarray,
        classes: np.ndarray,
        spec: ModelSpec,
        cores: int = 1,
        rounds_per_epoch: int = 1,
        before_round=None,
    ):
        if x.dtype == np.uint8:
            x = scale_pixels(x)
        self.shard, self.x, self.y, self.classes = shard, x, y, classes
        self.before_round = before_round
        self.spec, self.cores, self.rounds_per_epoch = spec, cores, rounds_per_epoch
        self.model = make_model(spec)
        self.flat: np.ndarray | None = None
        self.worker = worker_id()
        self._order: np.ndarray | None = None
        self._round = 0
        self._epoch_loss = 0.0
        self._epoch_seen = 0
        self._process_runqueue_at_end: float | None = None

    @property
    def n_samples(self) -> int:
        return len(self.y)

    def resume_at(self, round_in_epoch: int) -> None:
        """Start this (replacement) trainer at slice ``round_in_epoch`` of a fresh permutation.

        A trainer that replaces a lost one must end the interrupted epoch when its siblings
        do, so that the driver's epoch bookkeeping (``epoch_end``) stays aligned.
        """
        if self.rounds_per_epoch > 1 and round_in_epoch:
            self._order = self.model.random_state.permutation(self.n_samples)
            self._round = round_in_epoch % self.rounds_per_epoch

    def _fit(self, x, y) -> None:
        if self.flat is None:
            self.model.partial_fit(x, y, classes=self.classes)
            self.flat = bind_flat(self.model)
        else:
            self.model.partial_fit(x, y)

    def train_round(self, weights: np.ndarray | None, position: RoundPosition | None = None) -> ShardUpdate:
        """Load ``weights`` (None on the first round: keep the seeded initialisation) and train."""
        arrived = thread_clocks()
        between = 0.0
        if self._process_runqueue_at_end is not None:
            between = max(0.0, process_runqueue_s(arrived) - self._process_runqueue_at_end)
        if self.before_round is not None and position is not None:
            self.before_round(self.shard, position)
        if weights is not None:
            if self.flat is None:
                self.flat = prime(self.model, self.x, self.y, self.classes)
            self.flat[...] = weights
        start = Reading.now()
        with blas_threads(self.cores):
            if self.rounds_per_epoch == 1:
                self._fit(self.x, self.y)
                n, loss, epoch_end = self.n_samples, float(self.model.loss_), True
            else:
                n, loss, epoch_end = self._train_chunk()
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
            epoch_end,
            compute_cpu_s=span.cpu_s,
            compute_runqueue_s=span.runqueue_s,
            between_runqueue_s=between,
            compute_threads=busy_threads(arrived, ended),
        )

    def _train_chunk(self):
        if self._round == 0:
            self._order = self.model.random_state.permutation(self.n_samples)
            self._epoch_loss, self._epoch_seen = 0.0, 0
        idx = np.array_split(self._order, self.rounds_per_epoch)[self._round]
        self._round = (self._round + 1) % self.rounds_per_epoch
        if len(idx):
            self._fit(self.x[idx], self.y[idx])
            self._epoch_loss += float(self.model.loss_) * len(idx)
            self._epoch_seen += len(idx)
        loss = self._epoch_loss / self._epoch_seen if self._epoch_seen else float("nan")
        return len(idx), loss, self._round == 0
