"""What one whole job measures about itself: accuracy, epochs run, where the time went, memory.

Every value comes from the record ``nncompare run`` returns. ``run_grid`` (asv's
``setup_cache``, shared by every class here, so it runs once per commit and environment) runs
each combination of the grid once, each in a fresh process, so each record's driver peak RSS is
that job's own. A combination that cannot run here is skipped; one that fails fails its
benchmarks (and only them).

Only the dataset in use runs (``common.dataset_name``); the grid's other dataset values are
skipped, so each dataset keeps its own line. ``version`` "2": the dataset became a parameter.
The tracks read the record of ``nncompare run --json`` alone, so they run on every commit of
the project's history, older than the time benchmarks' ``TrainingRun``.
"""

from __future__ import annotations

from . import common

PHASES = ["compute", "transfer", "average", "idle"]
PROCESSES = ["driver", "workers", "all"]


def summarise(record: dict) -> dict:
    """The parts of a record the tracks read (the full record is too big to keep per combo)."""
    phases = record["phases_s"]
    training = max(record["wall_s"] - record["startup_s"], 1e-12)
    peak = record["peak_rss_bytes"]
    return {
        "test_accuracy": record["test_accuracy"],
        "epochs_run": record["epochs_run"],
        "phases": {
            "compute": phases["compute"],
            "transfer": phases["transfer"],
            "average": phases["average"],
            # the mean worker's wait per round (round wall time minus its own compute), summed
            "idle": float(sum(record["idle_s"])),
        },
        # what the engine adds to training beyond the workers' compute and the driver's own
        # averaging and evaluation (the same work on every engine): placing shards, moving
        # weights, scheduling and waiting
        "overhead_fraction": (phases["place"] + phases["transfer"] + phases["other"]) / training,
        "peak_rss": {"driver": peak["driver"], "workers": peak["workers"], "all": peak["driver"] + peak["workers"]},
    }


def run_grid() -> dict:
    runs = {}
    for engine in common.ENGINES:
        for workers in common.GRID["workers"]:
            for cores in common.GRID["cores"]:
                for memory in common.GRID["memory"]:
                    reason = common.skip_reason(engine, workers, cores, memory)
                    for epochs in common.GRID["epochs"]:
                        key = (engine, workers, cores, memory, epochs)
                        if reason:
                            runs[key] = {"skip": reason}
                            continue
                        record = common.run_in_child(engine, workers, cores, memory, epochs, common.GRID["timeout"])
                        runs[key] = record if "error" in record else summarise(record)
    return {"dataset": common.dataset_name(), "runs": runs}


run_grid.timeout = common.GRID["timeout"] * 4


class _Tracks:
    params = common.JOB_PARAMS
    param_names = common.JOB_NAMES
    version = "2"
    setup_cache = staticmethod(run_grid)

    def setup(self, cache, engine, workers, cores, memory, epochs, dataset, *rest):
        if dataset != cache["dataset"]:
            raise NotImplementedError(f"this run uses {cache['dataset']}, not {dataset}")
        run = cache["runs"][(engine, workers, cores, memory, epochs)]
        if "skip" in run:
            raise NotImplementedError(run["skip"])
        if "error" in run:
            raise RuntimeError(run["error"])
        self.run = run


class Accuracy(_Tracks):
    def track_test_accuracy(self, cache, engine, workers, cores, memory, epochs, dataset):
        """Test accuracy after training (MLPClassifier.score on the test split)."""
        return self.run["test_accuracy"]

    track_test_accuracy.unit = "fraction"

    def track_epochs_run(self, cache, engine, workers, cores, memory, epochs, dataset):
        """Epochs actually run: fewer than asked when scikit-learn's stopping rule ended the job."""
        return self.run["epochs_run"]

    track_epochs_run.unit = "epochs"


class Overhead(_Tracks):
    def track_overhead_fraction(self, cache, engine, workers, cores, memory, epochs, dataset):
        """Share of training wall time (start-up excluded) spent placing shards, moving weights and waiting."""
        return self.run["overhead_fraction"]

    track_overhead_fraction.unit = "fraction"


class PhaseSeconds(_Tracks):
    params = [*common.JOB_PARAMS, PHASES]
    param_names = [*common.JOB_NAMES, "phase"]

    def track_phase_seconds(self, cache, engine, workers, cores, memory, epochs, dataset, phase):
        """Seconds of the whole job in one phase (compute, transfer, average, idle)."""
        return self.run["phases"][phase]

    track_phase_seconds.unit = "seconds"


class PeakMemory(_Tracks):
    params = [*common.JOB_PARAMS, PROCESSES]
    param_names = [*common.JOB_NAMES, "process"]

    def track_peak_rss(self, cache, engine, workers, cores, memory, epochs, dataset, process):
        """Peak resident memory of the driver, of all workers together, or of both (bytes).

        asv's own peakmem_ sees only its process; the workers of Dask and Spark are others.
        """
        return self.run["peak_rss"][process]

    track_peak_rss.unit = "bytes"
