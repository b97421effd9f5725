"""The Dask engine on real Dask: a LocalCluster it starts, and real ``dask scheduler``/``dask worker`` processes.

Small real jobs (digits, or the first few thousand Fashion-MNIST samples) keep the file
within a few minutes on a loaded 2-core machine.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import psutil
import pytest

pytest.importorskip("distributed")

from distributed import Client  # noqa: E402

from nncompare.engines.dask.driver import DaskEngine  # noqa: E402
from nncompare.engines.dask.worker import tcp_traffic_on_worker  # noqa: E402
from nncompare.engines.local.engine import LocalEngine  # noqa: E402
from nncompare.engines.options import EngineOptions  # noqa: E402
from nncompare.errors import EngineError, UsageError  # noqa: E402
from nncompare.job import JobSpec, ModelSpec, Topology  # noqa: E402
from nncompare.partition import make_shards  # noqa: E402
from nncompare.training import TrainingRun, run_job  # noqa: E402

BIN = Path(sys.executable).parent
NNCOMPARE = [sys.executable, "-c", "from nncompare.cli import main; main()"]


def fashion_spec(**changes) -> JobSpec:
    spec = JobSpec(
        dataset="fashion-mnist",
        engine="dask",
        epochs=3,
        train_samples=6000,
        convergence_stop=False,
        topology=Topology(workers=2, cores_per_worker=1),
    )
    return spec.with_(**changes)


def descendants() -> set[int]:
    """Our child processes, less multiprocessing's resource tracker (one per interpreter, by design)."""
    out = set()
    for p in psutil.Process().children(recursive=True):
        try:
            if "resource_tracker" not in " ".join(p.cmdline()):
                out.add(p.pid)
        except psutil.Error:
            pass
    return out


def alive(pids) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.NoSuchProcess:
            pass
    return out


def wait_gone(pids, timeout=15.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive(pids)


def port_is_listening(address: str) -> bool:
    host, port = address.removeprefix("tcp://").removeprefix("http://").split("/")[0].rsplit(":", 1)
    with socket.socket() as s:
        s.settimeout(1.0)
        return s.connect_ex((host, int(port))) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(engine: DaskEngine, spec: JobSpec, dataset, progress=None) -> dict:
    """The whole job through the training run every engine shares, on ``engine`` (which the test keeps)."""
    with TrainingRun(spec, dataset, engine, progress=progress) as run:
        run.train()
    return run.record()


class ExitOnce:
    """A ``before_round`` hook: the worker training ``shard`` dies (``os._exit``) before round ``number``.

    Only on the first attempt: the hook creates ``marker`` exclusively before it exits, so the
    replacement actor, which gets the same hook and trains the same round, goes on.
    """

    def __init__(self, marker: str, shard: int, number: int):
        self.marker, self.shard, self.number = marker, shard, number

    def __call__(self, shard: int, position) -> None:
        if shard != self.shard or position.number != self.number:
            return
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return
        os._exit(17)


class KeepResults(DaskEngine):
    """The Dask engine, keeping each round's position and result so a test can read the updates."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.results: list = []

    def run_round(self, weights, position):
        result = super().run_round(weights, position)
        self.results.append((position, result))
        return result


# -- local cluster ---------------------------------------------------------------------------


@pytest.mark.slow
def test_local_cluster_run_end_to_end(fashion):
    before = descendants()
    environ = dict(os.environ)
    record = train(DaskEngine(fashion_spec()), fashion_spec(), fashion)

    assert record["engine"] == "dask" and record["epochs_run"] == 3
    assert record["test_accuracy"] > 0.72
    assert sum(record["phases_s"].values()) == pytest.approx(record["wall_s"] - record["startup_s"], rel=1e-6)
    info = record["engine_info"]
    assert info["mode"] == "local-cluster" and info["malloc_trim_threshold_removed"]
    assert "dashboard_url" not in info and info["warnings"] == [] and info["recoveries"] == []
    assert len(info["workers"]) == 2
    for facts in info["workers"].values():
        assert facts["env"]["MALLOC_TRIM_THRESHOLD_"] is None
        assert facts["env"]["OMP_NUM_THREADS"] == "1" and facts["blas_threads"] == [1]
        assert facts["env"]["NUMPY_MADVISE_HUGEPAGE"] == "0"  # small pages: steadier placement (trainer.WORKER_ENV)
        assert facts["nthreads"] == 1 and len(facts["shards"]) == 1
    # rounds are actor calls: the scheduler made no transition while training
    assert info["scheduler_transitions_during_training"] == 0
    # the workers were forked from one server that imported the stack, and rounds went down their tree
    assert info["worker_start_method"] == "forkserver" and info["exchange"] == "tree"
    assert all(0 <= r["average_s"] <= r["wall_s"] - r["transfer_s"] for r in record["rounds"])
    for r in record["rounds"]:
        assert r["recovered_shards"] == [] and r["recovery_s"] == 0.0
        assert len(r["worker_minflt"]) == len(r["worker_in_actor_s"]) == len(r["worker_address"]) == 2
        assert r["compute_s"] == max(r["worker_compute_s"])  # Dask workers train side by side
        assert 0 <= r["transfer_s"] <= r["wall_s"]
        # the actor call wraps the trainer's partial_fit, and the driver's round wraps the call
        assert all(c <= a <= r["wall_s"] for a, c in zip(r["worker_in_actor_s"], r["worker_compute_s"]))
    # peaks come from the two worker processes, not the driver
    pids = {facts["pid"] for facts in info["workers"].values()}
    assert {int(w.rsplit(":", 1)[1]) for w in record["peak_rss_bytes"]["per_worker"]} == pids

    # clean shutdown: worker processes gone, scheduler port closed, our environment restored
    assert wait_gone(descendants() - before) == []
    assert wait_gone(pids) == []
    assert not port_is_listening(info["scheduler"])
    assert dict(os.environ) == environ


@pytest.mark.slow
def test_options_reach_the_local_cluster(digits):
    """keep_malloc_trim reaches the workers, and the dashboard is served on a free loopback port."""
    spec = JobSpec(dataset="digits", engine="dask", topology=Topology(workers=1, cores_per_worker=1))
    with DaskEngine(spec, options=EngineOptions(dashboard=True).with_settings("dask", keep_malloc_trim=True)) as engine:
        info = engine.describe()
        url = info["dashboard_url"]
        assert url.startswith("http://127.0.0.1:") and ":8787/" not in url
        with urllib.request.urlopen(url, timeout=10) as page:
            assert page.status == 200
        [worker] = info["workers"].values()
        assert worker["env"]["MALLOC_TRIM_THRESHOLD_"] == "65536" and not info["malloc_trim_threshold_removed"]
        # without bokeh Dask serves only a notice there: the record says so, once
        notices = [w for w in info["warnings"] if "bokeh" in w]
        assert len(notices) == (importlib.util.find_spec("bokeh") is None)

        # the quieter event loops reach the workers and the scheduler (which shares the driver's loop)
        def periods(dask_worker=None, dask_scheduler=None):  # nested: pickled by value for the workers
            server = dask_worker or dask_scheduler
            return {name: pc.callback_time for name, pc in server.periodic_callbacks.items()}

        [on_worker] = engine.client.run(periods).values()
        on_scheduler = engine.client.run_on_scheduler(periods)
        assert on_worker["tick"] == on_scheduler["tick"] == 1000 and on_worker["memory_monitor"] == 500
        assert on_worker["monitor"] == on_scheduler["monitor"] == 2000
        assert "stealing" not in engine.client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.extensions))
    assert not port_is_listening(url)


@pytest.mark.slow
def test_shards_are_placed_once_and_only_weights_travel_after(fashion, drive_rounds):
    spec = fashion_spec(train_samples=10000)
    shards = make_shards(fashion.x_train[:10000], fashion.y_train[:10000], 2, spec.partition, spec.model.seed)
    placed, rounds = {}, 3
    with DaskEngine(spec) as engine:
        before = engine.client.run(tcp_traffic_on_worker)
        driven = drive_rounds(
            engine,
            shards,
            fashion.classes,
            rounds,
            placed=lambda: placed.update(engine.client.run(tcp_traffic_on_worker)),
        )
        after = engine.client.run(tcp_traffic_on_worker)
        info = engine.describe()
    weights = driven[-1].weights

    for entry in info["placement"].values():
        address, shard_bytes = entry["worker"], entry["bytes"]
        # the counter sees the shard arrive (so it can see one arrive again) ...
        assert placed[address]["received"] - before[address]["received"] >= shard_bytes
        # ... and afterwards only weights and heartbeats arrive: far less than one shard
        during = after[address]["received"] - placed[address]["received"]
        assert during < rounds * weights.nbytes + 1_000_000 < shard_bytes / 4
        assert after[address]["transfers_in"] == 0  # no worker-to-worker data transfer either
        assert after[address]["actors"] == 1
    assert info["scheduler_transitions_during_training"] == 0


@pytest.mark.slow
@pytest.mark.parametrize("tree", [True, False], ids=["tree", "driver"])
def test_averaged_weights_match_the_local_engine(fashion, drive_rounds, tree):
    """Same spec, seed and shards, one BLAS thread per worker: weight for weight, round after round.

    The local engine trains on the loader's float32 features; the Dask workers receive the
    same rows as uint8 pixels and scale them themselves. Through the workers' tree the average
    is merged in the workers, the same merges as the driver's: the same bits.
    """
    spec = fashion_spec(train_samples=4000, sync_every=5)
    cut = (fashion.y_train[:4000], 2, spec.partition, spec.model.seed)
    features = make_shards(fashion.x_train[:4000], *cut)
    pixels = make_shards(None, *cut, pixels=fashion.x_train_pixels[:4000])
    assert all(s.wire_x.dtype == np.uint8 for s in pixels)
    with LocalEngine(spec.with_(engine="local")) as local:
        expected = drive_rounds(local, features, fashion.classes, 4, per_epoch=2)
    with DaskEngine(spec, options=EngineOptions().with_settings("dask", tree_exchange=tree)) as engine:
        got = drive_rounds(engine, pixels, fashion.classes, 4, per_epoch=2)
        assert engine.describe()["exchange"] == ("tree" if tree else "driver")
    for a, b in zip(expected, got):
        assert (b.result.average is not None) == tree
        assert [u.shard for u in b.result.updates] == [0, 1]
        assert [u.epoch_end for u in b.result.updates] == [b.position.index == 1] * 2
        assert b.weights.dtype == np.float32
        assert np.max(np.abs(a.weights - b.weights)) <= 1e-5, f"round {b.position.number}"


@pytest.mark.slow
def test_same_seed_and_topology_give_the_same_accuracy(digits):
    spec = JobSpec(
        dataset="digits",
        engine="dask",
        epochs=4,
        convergence_stop=False,
        model=ModelSpec(hidden_layer_sizes=(32,), batch_size=64, learning_rate_init=0.01),
        topology=Topology(workers=2, cores_per_worker=1),
    )
    first = run_job(spec, dataset=digits)
    second = run_job(spec, dataset=digits)
    assert abs(first["test_accuracy"] - second["test_accuracy"]) <= 0.002
    assert first["test_accuracy"] > 0.8


@pytest.mark.slow
def test_a_worker_killed_mid_run_gets_its_shard_replaced(fashion):
    """SIGKILL from outside, between epochs: the shard is re-placed and the run ends as asked."""
    spec = fashion_spec(epochs=4, train_samples=10000)
    engine = DaskEngine(spec)
    before = descendants()
    killed = []

    def kill_during_next_round(info):
        if info["epoch"] == 1:
            pid = next(iter(engine.describe()["workers"].values()))["pid"]
            threading.Timer(0.05, lambda: (os.kill(pid, signal.SIGKILL), killed.append(pid))).start()

    record = train(engine, spec, fashion, progress=kill_during_next_round)
    assert killed
    assert record["epochs_run"] == 4
    recoveries = record["engine_info"]["recoveries"]
    assert len(recoveries) == 1 and recoveries[0]["lost_worker"] != recoveries[0]["new_worker"]
    [recovered] = [r for r in record["rounds"] if r["recovered_shards"]]
    assert recovered["recovered_shards"] == recoveries[0]["shards"] and recovered["number"] == recoveries[0]["round"]
    assert recovered["recovery_s"] == pytest.approx(recoveries[0]["seconds"])
    assert 0 < recovered["recovery_s"] < recovered["wall_s"]
    assert record["test_accuracy"] > 0.72
    assert wait_gone(descendants() - before) == []


@pytest.mark.slow
def test_a_worker_lost_mid_epoch_rejoins_the_epoch_where_its_siblings_are(fashion, tmp_path):
    """sync_every gives 3 rounds per epoch; shard 1's worker process exits before round 5 (epoch 2,
    second round). Its replacement must train rounds 5 and 6 and end epoch 2 with shard 0."""
    spec = fashion_spec(epochs=3, sync_every=5)  # 3,000 samples per shard, 1,000 per round
    marker = tmp_path / "exited"
    engine = KeepResults(spec, options=EngineOptions(before_round=ExitOnce(str(marker), shard=1, number=5)))
    record = train(engine, spec, fashion)

    assert marker.exists()  # the worker really ran the hook, and exited
    assert record["rounds_per_epoch"] == 3 and record["epochs_run"] == 3
    assert [r["number"] for r in record["rounds"]] == list(range(1, 10))
    [recovery] = record["engine_info"]["recoveries"]
    assert (recovery["shards"], recovery["round"], recovery["epoch"]) == ([1], 5, 2)
    assert [r["number"] for r in record["rounds"] if r["recovered_shards"]] == [5]
    workers_of_shard_1 = [u.worker for _, result in engine.results for u in result.updates if u.shard == 1]
    assert len(set(workers_of_shard_1[:4])) == 1 and workers_of_shard_1[4] != workers_of_shard_1[3]
    for position, result in engine.results:
        # every round, both shards, and epoch ends where the position says: the replacement joined mid-epoch
        assert [u.shard for u in result.updates] == [0, 1]
        assert [u.epoch_end for u in result.updates] == [position.index == 2] * 2, position
        assert all(u.n_samples == 1000 for u in result.updates), position
    assert np.isfinite(record["loss_curve"]).all()
    assert record["test_accuracy"] > 0.7


def test_a_spark_master_is_refused(small_spec):
    with pytest.raises(UsageError, match="is a spark address"):
        DaskEngine(small_spec.with_(engine="dask"), cluster="spark://host:7077")


def test_keeping_the_malloc_trim_is_refused_on_a_remote_cluster(small_spec):
    with pytest.raises(UsageError, match="own cluster only"):
        DaskEngine(
            small_spec.with_(engine="dask"),
            cluster="tcp://127.0.0.1:8786",
            options=EngineOptions().with_settings("dask", keep_malloc_trim=True),
        )


def test_the_timeout_comes_from_the_options_not_the_environment(small_spec, monkeypatch):
    monkeypatch.setenv("NNCOMPARE_DASK_TIMEOUT", "600")
    engine = DaskEngine(
        small_spec.with_(engine="dask"),
        cluster=f"tcp://127.0.0.1:{free_port()}",
        options=EngineOptions().with_settings("dask", timeout_s=1.5),
    )
    start = time.monotonic()
    with pytest.raises(EngineError, match="within 1.5 s"):
        engine.start()
    engine.close()
    assert time.monotonic() - start < 20


@pytest.mark.slow
def test_ctrl_c_leaves_no_processes_behind(tmp_path, fashion_dir):
    out = tmp_path / "records.jsonl"
    cmd = NNCOMPARE + [
        "run",
        "--engine",
        "dask",
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        str(fashion_dir),
        "--workers",
        "2",
        "--epochs",
        "100",
        "--train-samples",
        "20000",
        "--no-convergence-stop",
        "--out",
        str(out),
        "-q",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        family: set[int] = set()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            family |= {p.pid for p in psutil.Process(proc.pid).children(recursive=True)}
            if _training_started(proc.pid):
                break
            time.sleep(0.3)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground group
        _, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    lines = [line for line in err.splitlines() if line.startswith("nncompare: error:")]
    assert len(lines) == 1 and "interrupted" in lines[0], err
    assert "Traceback" not in err
    assert not out.exists()
    assert wait_gone(family) == []


def _training_started(pid: int) -> bool:
    """The driver's two workers are training: each has used more CPU than starting up takes (~1.6 s)."""
    try:
        busy = [p for p in psutil.Process(pid).children(recursive=True) if sum(p.cpu_times()[:2]) > 2.5]
    except psutil.Error:
        return False
    return len(busy) >= 2


# -- a real remote cluster: dask scheduler and dask worker processes --------------------------


def _start(args, env=None) -> subprocess.Popen:
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, start_new_session=True)


def _stop(*procs):
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def _wait_for_workers(address: str, n: int, timeout=60.0) -> None:
    with Client(address, timeout=timeout, set_as_default=False) as client:
        client.wait_for_workers(n, timeout=timeout)


#: The Dask config docs/dask.md tells users to give their workers' nannies.
NO_MALLOC_TRIM_YAML = """\
distributed:
  nanny:
    pre-spawn-environ:
      MALLOC_TRIM_THRESHOLD_: null
"""


@pytest.fixture(scope="module")
def remote_cluster(tmp_path_factory):
    """A scheduler and two ``dask worker`` commands (1 thread, 1 GiB each): one with the documented
    config that drops the nanny's MALLOC_TRIM_THRESHOLD_, one with Dask's defaults."""
    config_dir = tmp_path_factory.mktemp("dask-config")
    (config_dir / "nncompare.yaml").write_text(NO_MALLOC_TRIM_YAML)
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = _start(
        [
            str(BIN / "dask"),
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dashboard-address",
            "127.0.0.1:0",
            "--no-show",
        ]
    )
    worker_cmd = [
        str(BIN / "dask"),
        "worker",
        address,
        "--nthreads",
        "1",
        "--memory-limit",
        "1GiB",
        "--host",
        "127.0.0.1",
        "--no-dashboard",
    ]
    # a variable already in the environment wins over the nanny's config: start both workers
    # without one (another LocalCluster in this test process may have left it in os.environ)
    clean = {k: v for k, v in os.environ.items() if k != "MALLOC_TRIM_THRESHOLD_"}
    fixed = _start(worker_cmd + ["--name", "fixed"], env={**clean, "DASK_CONFIG": str(config_dir)})
    default = _start(worker_cmd + ["--name", "default"], env=clean)
    try:
        _wait_for_workers(address, 2)
        yield address
    finally:
        _stop(fixed, default, scheduler)


def run_cli(*args, env=None, timeout=240):
    env = {**os.environ, **(env or {})}
    return subprocess.run(NNCOMPARE + list(args), capture_output=True, text=True, timeout=timeout, env=env)


def _faults_by_worker(record) -> dict[str, float]:
    """Mean minor page faults per round of each worker, first round left out (it allocates everything once)."""
    out: dict[str, list] = {}
    for r in record["rounds"][1:]:
        for address, faults in zip(r["worker_address"], r["worker_minflt"]):
            out.setdefault(address, []).append(faults)
    return {a: float(np.mean(f)) for a, f in out.items()}


@pytest.mark.slow
def test_remote_cluster_run_through_the_cli(remote_cluster, tmp_path, fashion_dir):
    """Real scheduler and workers; the malloc finding shows up, is reported, and pinning cures it."""
    out = tmp_path / "records.jsonl"
    args = [
        "run",
        "--engine",
        "dask",
        "--cluster",
        remote_cluster,
        "--workers",
        "2",
        "--cores",
        "1",
        "--memory",
        "1GiB",
        "--dataset",
        "fashion-mnist",
        "--data-dir",
        str(fashion_dir),
        "--train-samples",
        "4000",
        "--epochs",
        "3",
        "--out",
        str(out),
        "--json",
        "-q",
    ]
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert [json.loads(line) for line in out.read_text().splitlines()] == [record]
    info = record["engine_info"]
    assert info["mode"] == "remote" and info["scheduler"] == remote_cluster
    assert record["test_accuracy"] > 0.6
    # the documented config drops the nanny's malloc setting; the default worker keeps it, which is reported
    trim = {a: w["env"]["MALLOC_TRIM_THRESHOLD_"] for a, w in info["workers"].items()}
    default = next(a for a, t in trim.items() if t == "65536")
    fixed = next(a for a, t in trim.items() if t is None)
    assert not info["malloc_trim_threshold_removed"] and info["malloc_thresholds_pinned"] == []
    assert len(info["warnings"]) == 1 and "MALLOC_TRIM_THRESHOLD_=65536" in result.stderr
    faults = _faults_by_worker(record)
    # the page-fault storm, measured on equal shards
    assert faults[default] > 10 * faults[fixed] + 1000, faults

    # opting in pins the default worker's malloc thresholds: its faults drop to the fixed worker's level
    result = run_cli(*args, env={"NNCOMPARE_DASK_PIN_MALLOC": "1"})
    assert result.returncode == 0, result.stderr
    pinned = json.loads(result.stdout)
    assert pinned["engine_info"]["malloc_thresholds_pinned"] == [default]
    faults = _faults_by_worker(pinned)
    assert faults[default] < 3 * faults[fixed] + 1000, faults
    assert pinned["test_accuracy"] == record["test_accuracy"]

    # the runs released their actors; the cluster is as it was
    with Client(remote_cluster, set_as_default=False) as client:
        left = client.run(tcp_traffic_on_worker)
    assert len(left) == 2 and all(w["actors"] == 0 for w in left.values())


def test_a_remote_cluster_gives_its_own_dashboard_link(remote_cluster, digits):
    spec = JobSpec(dataset="digits", engine="dask", topology=Topology(workers=2, cores_per_worker=1))
    with DaskEngine(spec, remote_cluster, EngineOptions(dashboard=True)) as engine:
        url = engine.describe()["dashboard_url"]
    with DaskEngine(spec, remote_cluster) as engine:
        assert "dashboard_url" not in engine.describe()  # none was asked for
    # the fixture's scheduler serves its dashboard (or bokeh's absence notice) on a free port
    assert url.startswith("http://127.0.0.1:") and url.endswith("/status")
    with urllib.request.urlopen(url, timeout=10) as page:
        assert page.status == 200


@pytest.mark.parametrize(
    "flags, says",
    [
        (["--workers", "1"], "2 workers, not --workers 1"),
        (["--workers", "2", "--cores", "2"], "1 threads per worker, not --cores 2"),
        (["--workers", "2", "--memory", "2GiB"], "not --memory 2 GiB"),
    ],
)
def test_a_cluster_unlike_the_flags_is_refused_in_one_line(remote_cluster, flags, says):
    result = run_cli("run", "--engine", "dask", "--cluster", remote_cluster, "--dataset", "digits", *flags)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("nncompare: error:"), result.stderr
    assert says in result.stderr


def test_an_unreachable_scheduler_is_one_line_within_the_timeout():
    start = time.monotonic()
    result = run_cli(
        "run",
        "--engine",
        "dask",
        "--cluster",
        f"tcp://127.0.0.1:{free_port()}",
        "--dataset",
        "digits",
        env={"NNCOMPARE_DASK_TIMEOUT": "2"},
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "cannot reach the Dask scheduler" in result.stderr, result.stderr
    assert time.monotonic() - start < 30


@pytest.mark.slow
def test_losing_the_only_worker_stops_in_one_line_without_a_record(tmp_path, fashion_dir):
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = _start(
        [
            str(BIN / "dask"),
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--dashboard-address",
            "127.0.0.1:0",
            "--no-show",
        ]
    )
    worker = _start(
        [str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-nanny", "--host", "127.0.0.1", "--no-dashboard"]
    )
    out = tmp_path / "records.jsonl"
    try:
        _wait_for_workers(address, 1)
        cli = subprocess.Popen(
            NNCOMPARE
            + [
                "run",
                "--engine",
                "dask",
                "--cluster",
                address,
                "--workers",
                "1",
                "--dataset",
                "fashion-mnist",
                "--data-dir",
                str(fashion_dir),
                "--train-samples",
                "5000",
                "--epochs",
                "100000",  # far longer than the test: the worker's loss, not the last epoch, ends the run
                "--no-convergence-stop",
                "--out",
                str(out),
                "-q",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NNCOMPARE_DASK_TIMEOUT": "3"},
        )
        with Client(address, set_as_default=False) as client:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and cli.poll() is None:
                if sum(w["actors"] for w in client.run(tcp_traffic_on_worker).values()):
                    break
                time.sleep(0.3)
        time.sleep(1.0)
        worker.kill()  # --no-nanny: nothing restarts it, and no other worker can take the shard
        _, err = cli.communicate(timeout=120)
    finally:
        _stop(worker, scheduler)
    assert cli.returncode == 1, err
    lines = [line for line in err.splitlines() if line.startswith("nncompare: error:")]
    assert len(lines) == 1 and "no worker is left" in lines[0], err
    assert "Traceback" not in err
    assert not out.exists()
