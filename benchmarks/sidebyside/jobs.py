"""The job every side-by-side script runs: the project's default model, a fixed number of epochs.

784-100-10 with adam and batches of 200 (scikit-learn's defaults, the quick grid's job), and no
convergence stop, so that every engine and every reference trains the same epochs.
"""

from __future__ import annotations

from nncompare.job import JobSpec, ModelSpec, Topology


def side_by_side_job(engine: str, *, dataset: str, epochs: int, workers: int, cores: int = 1, train_samples=None):
    return JobSpec(
        dataset=dataset,
        engine=engine,
        epochs=epochs,
        convergence_stop=False,
        train_samples=train_samples,
        model=ModelSpec(hidden_layer_sizes=(100,), batch_size=200),
        topology=Topology(workers=workers, cores_per_worker=cores),
    )
