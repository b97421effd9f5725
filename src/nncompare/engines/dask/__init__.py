"""The Dask engine: one long-lived actor per worker holds its shard and trainer for the whole run.

``driver`` runs rounds and recovery, ``cluster`` starts or checks the cluster, and
``worker`` is all that runs inside a worker (imported there by name).
"""

from nncompare.engines.dask.driver import DaskEngine

__all__ = ["DaskEngine"]
