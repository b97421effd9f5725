"""nncompare: train one scikit-learn MLP job on local, Dask and Spark engines and measure it.

The job is defined once (:class:`JobSpec`); engines only decide *where* each shard's
``partial_fit`` runs, never *what* is computed.
"""

from nncompare.errors import NNCompareError, UsageError

__all__ = ["JobSpec", "ModelSpec", "Topology", "NNCompareError", "UsageError", "run_job"]
__version__ = "0.1.0"


def __getattr__(name: str):
    """The job's classes on first use: importing them reads every engine's plug-in (0.15 s), and the
    ``nncompare`` command must install its signal handlers before that (``nncompare.__main__``)."""
    if name in ("JobSpec", "ModelSpec", "Topology"):
        from nncompare import job

        return getattr(job, name)
    raise AttributeError(f"module 'nncompare' has no attribute {name!r}")


def run_job(spec, *, data_dir=None, cluster=None, progress=None, options=None):
    """Run ``spec`` and return its result record (a dict); see :mod:`nncompare.training`."""
    from nncompare.training import run_job as _run_job

    return _run_job(spec, data_dir=data_dir, cluster=cluster, progress=progress, options=options)
