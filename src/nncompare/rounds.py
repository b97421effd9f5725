"""What travels between the driver and a worker each round: where the round stands, and the update.

Kept apart from the trainer (which needs scikit-learn) so that the engines' protocol, the wire
formats and the training loop can name these without importing it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


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
