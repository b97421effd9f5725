"""The Spark engine on a real local SparkSession: results, round cost, faults, the token, the Java check.

One session (2 slots of 1 core) serves every test here: the engine runs on the active
session instead of starting its own, and each test starts its own barrier stage on it, as a
run does. Faults are injected by ``before_round`` hooks (small classes below, shipped to the
tasks inside the barrier task's closure); each hook decides itself when to act.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("pyspark")

from pyspark import cloudpickle as spark_cloudpickle  # noqa: E402

from nncompare.averaging import average_weights  # noqa: E402
from nncompare.engines.local.engine import LocalEngine  # noqa: E402
from nncompare.engines.options import EngineOptions  # noqa: E402
from nncompare.engines.spark.driver import SparkEngine  # noqa: E402
from nncompare.engines.spark.jvm import stop_session  # noqa: E402
from nncompare.engines.spark.session import build_session, session_conf  # noqa: E402
from nncompare.engines.spark.wire import HEADER, MAGIC  # noqa: E402
from nncompare.errors import EngineError, UsageError  # noqa: E402
from nncompare.java import parse_major, require_java  # noqa: E402
from nncompare.job import JobSpec, ModelSpec, Topology  # noqa: E402
from nncompare.partition import make_shards  # noqa: E402
from nncompare.record import PHASES, RECORD_KEYS  # noqa: E402
from nncompare.rounds import RoundPosition
from nncompare.trainer import ShardTrainer  # noqa: E402
from nncompare.training import run_job  # noqa: E402

TWO_BY_ONE = Topology(workers=2, cores_per_worker=1)
DIGITS_MODEL = ModelSpec(hidden_layer_sizes=(32,), batch_size=64, learning_rate_init=0.01)

# The Python workers cannot import this test module: ship its hook classes by value.
spark_cloudpickle.register_pickle_by_value(sys.modules[__name__])


class FailOnce:
    """Raise once in round ``number`` on ``shard``: the first task there to create ``marker`` raises."""

    def __init__(self, marker: str, shard: int, number: int):
        self.marker, self.shard, self.number = marker, shard, number

    def __call__(self, shard, position):
        if shard != self.shard or position.number != self.number:
            return
        try:
            os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return  # failed once already: this is Spark's retry
        raise RuntimeError(f"injected failure in round {position.number} of shard {shard}")


class AlwaysFail:
    """Raise in round 1 on shard 0, in every attempt: Spark runs out of attempts."""

    def __call__(self, shard, position):
        if shard == 0 and position.number == 1:
            raise RuntimeError("injected failure in every attempt")


class HangInFirstJob:
    """Every task of the run's first barrier job hangs in round ``number``; Spark sees nothing wrong.

    The first task to train writes its stage id to ``marker`` (created exclusively), so the
    hook knows the first job apart from a fresh one the engine starts.
    """

    def __init__(self, marker: str, number: int):
        self.marker, self.number = marker, number

    def __call__(self, shard, position):
        from pyspark import BarrierTaskContext

        stage = BarrierTaskContext.get().stageId()
        try:
            with open(self.marker, "x") as out:
                out.write(str(stage))
        except FileExistsError:
            pass
        for _ in range(100):  # the sibling may be between creating and writing the file
            text = open(self.marker).read()
            if text:
                break
            time.sleep(0.01)
        if position.number == self.number and int(text) == stage:
            time.sleep(3600)


@pytest.fixture(scope="module")
def spark_session():
    try:
        require_java()
    except EngineError as exc:
        pytest.skip(str(exc))
    session = build_session(JobSpec(dataset="digits", engine="spark", topology=TWO_BY_ONE))
    yield session
    stop_session(session)


def _closed_by_server(sock: socket.socket, timeout: float = 10.0) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


def intrude(address) -> list[bool]:
    """Knock on the weight service the ways a stranger could; True for each connection it dropped."""
    attempts = []
    wrong = b'{"op":"hello","token":"0000","generation":1,"partition":0,"tid":999999}'
    for payload in (
        HEADER.pack(MAGIC, len(wrong), 0) + wrong,  # well-formed, wrong token
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",  # not our protocol
        HEADER.pack(MAGIC, 1 << 30, 0),
    ):  # asks us to read a GiB first
        sock = socket.create_connection(address, timeout=10)
        sock.sendall(payload)
        attempts.append(_closed_by_server(sock))
        sock.close()
    return attempts


@pytest.fixture(scope="module")
def fashion_rounds(spark_session, fashion):
    """Four rounds of 784-100-10 on 4000 Fashion-MNIST samples, on Spark and on the local engine.

    A stranger knocks on the weight service after the first round; the rounds go on. The
    local engine trains on the loader's float32 features, the Spark tasks on the same rows
    sent as uint8 pixels, which they scale themselves.
    """
    from conftest import _drive_rounds as drive_rounds  # a module-scoped fixture cannot take the function one

    spec = JobSpec(dataset="fashion-mnist", engine="spark", train_samples=4000, topology=TWO_BY_ONE)
    cut = (fashion.y_train[:4000], 2, spec.partition, spec.model.seed)
    intruders = []
    with LocalEngine(spec.with_(engine="local")) as local:
        expected = drive_rounds(local, make_shards(fashion.x_train[:4000], *cut), fashion.classes, 4)
    with SparkEngine(spec) as engine:

        def knock(number):
            if number == 1:
                intruders.extend(intrude(engine.service.address))

        pixels = make_shards(None, *cut, pixels=fashion.x_train_pixels[:4000])
        got = drive_rounds(engine, pixels, fashion.classes, 4, after=knock)
        info = engine.describe()
    rounds = [
        SimpleNamespace(result=g.result, wall_s=g.wall_s, spark=g.weights, local=e.weights)
        for g, e in zip(got, expected)
    ]
    return SimpleNamespace(rounds=rounds, info=info, intruders=intruders)


@pytest.mark.slow
def test_averaged_weights_match_the_local_engine_round_by_round(fashion_rounds):
    for i, r in enumerate(fashion_rounds.rounds, start=1):
        assert r.spark.dtype == np.float32 and r.spark.shape == r.local.shape
        assert np.abs(r.spark - r.local).max() <= 1e-5, f"round {i}"
    # and the rounds did train: the weights moved
    assert np.abs(fashion_rounds.rounds[-1].spark - fashion_rounds.rounds[0].spark).max() > 1e-3


@pytest.mark.slow
def test_a_round_moves_weights_in_far_less_than_a_barrier_allgather(fashion_rounds):
    """One allGather costs ~1 s; the tree moves 318 KB driver -> root -> task and back in milliseconds."""
    steady = fashion_rounds.rounds[1:]
    transfers = [r.wall_s - max(u.compute_s for u in r.result.updates) for r in steady]
    assert float(np.median(transfers)) < 0.1, transfers
    assert max(transfers) < 0.9, transfers
    for r in steady:
        assert [u.shard for u in r.result.updates] == [0, 1]
        assert r.result.extra["root_round_trip_s"] - max(u.compute_s for u in r.result.updates) < 0.9
        assert len(r.result.extra["task_overhead_s"]) == 2 and r.result.average is not None
        assert r.result.recovered_shards == [] and r.result.recovery_s == 0.0
        assert all(u.compute_s > 0 and u.compute_cpu_s > 0 for u in r.result.updates)
    assert fashion_rounds.info["barrier_stage_attempts"] == 1 and fashion_rounds.info["barrier_jobs"] == 1
    assert fashion_rounds.info["owns_session"] is False
    assert fashion_rounds.info["exchange"] == "tree"


@pytest.mark.slow
def test_strangers_are_dropped_without_touching_training(fashion_rounds):
    assert fashion_rounds.intruders == [True, True, True]
    assert fashion_rounds.info["connections_rejected"] == 3 and len(fashion_rounds.info["rejections"]) == 3
    assert "wrong token" in fashion_rounds.info["rejections"][0]
    assert fashion_rounds.info["connections_accepted"] == 2
    assert len(fashion_rounds.rounds) == 4  # the match with the local engine is checked above, strangers and all


@pytest.mark.slow
def test_run_job_on_local_spark_end_to_end(spark_session, digits):
    spec = JobSpec(dataset="digits", engine="spark", epochs=3, model=DIGITS_MODEL, topology=TWO_BY_ONE)
    record = run_job(spec, dataset=digits)
    assert set(RECORD_KEYS) <= set(record) and set(record["phases_s"]) == set(PHASES)
    assert sum(record["phases_s"].values()) == pytest.approx(record["wall_s"] - record["startup_s"], rel=1e-6)
    assert record["epochs_run"] == 3 and record["test_accuracy"] > 0.8
    info = record["engine_info"]
    assert info["master"].startswith("local[2") and info["settings"]["spark.task.cpus"] == "1"
    assert len({p["worker"] for p in info["placement"].values()}) == 2 and "dashboard_url" not in info
    # the tasks are other processes, and their memory is reported apart from the driver's
    assert len(record["peak_rss_bytes"]["per_worker"]) == 2 and record["peak_rss_bytes"]["workers"] > 0
    local = run_job(spec.with_(engine="local"), dataset=digits)
    assert record["test_accuracy"] == pytest.approx(local["test_accuracy"], abs=1e-9)
    # the engine ran on the test's session and left it running
    assert spark_session.sparkContext.parallelize([1, 2], 2).sum() == 3


def _fresh_average(shards, classes, model, weights):
    position = RoundPosition.of(2, 1)  # the round a replacement joins: one epoch per round, from ``weights``
    ups = [ShardTrainer(s.index, s.x, s.y, classes, model).train_round(weights, position) for s in shards]
    return average_weights([u.weights for u in ups], [u.n_samples for u in ups])


def _three_rounds(engine, shards, classes, drive_rounds):
    """Rounds 1-3 on ``engine``; returns the results and the averaged weights before and after each."""
    with engine:
        driven = drive_rounds(engine, shards, classes, 3)
        info = engine.describe()
    return [d.result for d in driven], [None, *(d.weights for d in driven)], info


@pytest.mark.slow
def test_a_failed_task_resumes_from_the_last_averaged_weights(spark_session, digits, tmp_path, drive_rounds):
    spec = JobSpec(dataset="digits", engine="spark", model=DIGITS_MODEL, topology=TWO_BY_ONE)
    shards = make_shards(digits.x_train, digits.y_train, 2, spec.partition, spec.model.seed)
    engine = SparkEngine(
        spec, options=EngineOptions(before_round=FailOnce(str(tmp_path / "failed"), shard=0, number=2))
    )
    (first, second, third), (_, w1, w2, _), info = _three_rounds(engine, shards, digits.classes, drive_rounds)
    assert [first.recovered_shards, second.recovered_shards, third.recovered_shards] == [[], [0, 1], []]
    assert second.recovery_s > 0 and first.recovery_s == third.recovery_s == 0.0
    assert info["barrier_stage_attempts"] == 2 and info["barrier_jobs"] == 1
    [recovery] = info["recoveries"]
    assert (recovery["round"], recovery["shards"]) == (2, [0, 1]) and recovery["reason"].startswith("task for shard")
    assert recovery["seconds"] == pytest.approx(second.recovery_s) and info["barrier_jobs_abandoned"] == []
    # round 2 ran on new tasks from w1 (fresh trainers primed with it), not from the start
    assert np.abs(w2 - _fresh_average(shards, digits.classes, spec.model, w1)).max() <= 1e-5
    assert np.abs(w2 - _fresh_average(shards, digits.classes, spec.model, None)).max() > 1e-3


@pytest.mark.slow
def test_a_stage_that_hangs_is_replaced_by_a_fresh_barrier_job(spark_session, digits, tmp_path, drive_rounds):
    """Tasks that stop answering but never fail get no retry from Spark: the engine starts a new job."""
    spec = JobSpec(dataset="digits", engine="spark", model=DIGITS_MODEL, topology=TWO_BY_ONE)
    shards = make_shards(digits.x_train, digits.y_train, 2, spec.partition, spec.model.seed)
    hook = HangInFirstJob(str(tmp_path / "first-stage"), number=2)
    options = EngineOptions(before_round=hook).with_settings("spark", round_timeout_s=5, connect_timeout_s=20)
    (first, second, third), (_, w1, w2, _), info = _three_rounds(
        SparkEngine(spec, options=options), shards, digits.classes, drive_rounds
    )
    assert [first.recovered_shards, second.recovered_shards, third.recovered_shards] == [[], [0, 1], []]
    assert info["barrier_jobs"] == 2
    assert [r["round"] for r in info["recoveries"]] == [2]
    assert len(info["barrier_jobs_abandoned"]) == 1 and info["barrier_jobs_abandoned"][0].startswith("barrier job 1:")
    assert np.abs(w2 - _fresh_average(shards, digits.classes, spec.model, w1)).max() <= 1e-5
    # the abandoned job's tasks are gone: only the new job runs on the session
    assert spark_session.sparkContext.parallelize([1, 2], 2).sum() == 3


@pytest.mark.slow
def test_a_failure_mid_epoch_keeps_the_epochs_aligned(spark_session, digits, tmp_path):
    """With several rounds per epoch, the replacement tasks join at the interrupted round's slice."""
    spec = JobSpec(
        dataset="digits",
        engine="spark",
        epochs=2,
        sync_every=2,
        model=DIGITS_MODEL,
        topology=TWO_BY_ONE,
        convergence_stop=False,
    )
    hook = FailOnce(str(tmp_path / "failed"), shard=1, number=3)
    options = EngineOptions(before_round=hook).with_settings("spark", connect_timeout_s=60)
    record = run_job(spec, dataset=digits, options=options)
    assert record["rounds_per_epoch"] == 6 and len(record["rounds"]) == 12
    assert [r["recovered_shards"] for r in record["rounds"]] == [[], [], [0, 1]] + [[]] * 9
    assert [r["index"] for r in record["rounds"]] == list(range(6)) * 2
    assert record["epochs_run"] == 2 and all(np.isfinite(record["loss_curve"]))
    assert record["test_accuracy"] > 0.8


@pytest.mark.slow
def test_when_spark_gives_up_the_run_stops_with_one_line_and_no_record(spark_session, digits):
    spec = JobSpec(dataset="digits", engine="spark", epochs=2, model=DIGITS_MODEL, topology=TWO_BY_ONE)
    start = time.monotonic()
    with pytest.raises(EngineError) as error:
        run_job(
            spec,
            dataset=digits,
            options=EngineOptions(before_round=AlwaysFail()).with_settings("spark", connect_timeout_s=60),
        )
    message = str(error.value)
    assert "\n" not in message, message
    assert (
        message.startswith("Spark gave up on the training stage: ") and "injected failure in every attempt" in message
    ), message
    assert time.monotonic() - start < 240
    # the session survives for the next run
    assert spark_session.sparkContext.parallelize([1, 2], 2).sum() == 3


def test_session_settings_follow_the_topology():
    spec = JobSpec(
        dataset="digits",
        engine="spark",
        topology=Topology(workers=3, cores_per_worker=2, memory_per_worker_bytes=2 * 2**30),
    )
    conf = session_conf(spec)
    assert conf["spark.master"] == "local[6,4]"
    assert (conf["spark.executor.instances"], conf["spark.executor.cores"], conf["spark.task.cpus"]) == ("3", "2", "2")
    assert conf["spark.executor.memory"] == "2048m" and conf["spark.executorEnv.OMP_NUM_THREADS"] == "2"
    assert conf["spark.executorEnv.NUMPY_MADVISE_HUGEPAGE"] == "0"
    assert conf["spark.driver.host"] == "127.0.0.1"
    remote = session_conf(spec, "spark://spark-master.example:7077")
    assert remote["spark.master"] == "spark://spark-master.example:7077" and "spark.driver.host" not in remote
    assert session_conf(spec, "yarn")["spark.master"] == "yarn"
    with pytest.raises(UsageError):
        session_conf(spec, "tcp://127.0.0.1:8786")
    # the Spark UI stays off unless the dashboard is asked for, and then takes a free port
    assert conf["spark.ui.enabled"] == "false" and "spark.ui.port" not in conf
    ui = session_conf(spec, dashboard=True)
    assert ui["spark.ui.enabled"] == "true" and 0 < int(ui["spark.ui.port"]) < 65536


def test_java_versions_are_read_like_the_jvm_prints_them():
    assert parse_major('openjdk version "17.0.15" 2025-04-15') == 17
    assert parse_major('java version "1.8.0_292"') == 8
    assert parse_major('openjdk version "21" 2023-09-19') == 21
    assert parse_major("no java here") is None


def test_cli_without_java_fails_with_one_line_naming_java_17(tmp_path):
    # a process of its own: in this one the tests' SparkSession is active, and the engine would run on it
    env = {**os.environ, "JAVA_HOME": str(tmp_path / "no-java"), "PATH": str(tmp_path / "no-bin")}
    code = "import sys; from nncompare.cli import main; main(sys.argv[1:])"
    proc = subprocess.run(
        [sys.executable, "-c", code, "run", "--engine", "spark", "--dataset", "digits", "--epochs", "1", "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    err = proc.stderr.strip()
    assert proc.returncode == 1, err
    assert len(err.splitlines()) == 1 and "Java 17" in err and err.startswith("nncompare: error:"), err


def test_wrong_java_version_is_named(tmp_path):
    fake = tmp_path / "jdk8" / "bin"
    fake.mkdir(parents=True)
    (fake / "java").write_text("#!/bin/sh\necho 'java version \"1.8.0_292\"' >&2\n")
    (fake / "java").chmod(0o755)
    with pytest.raises(EngineError, match="Java 17.*Java 8"):
        require_java(environ={"JAVA_HOME": str(tmp_path / "jdk8")})


def test_frames_carry_weights_bit_for_bit():
    from nncompare.engines.spark.wire import recv_frame, send_frame

    a, b = socket.socketpair()
    weights = np.random.RandomState(0).standard_normal(79510).astype(np.float32)
    sent = []
    sender = threading.Thread(target=lambda: sent.append(send_frame(a, {"op": "round", "round": 3}, weights)))
    sender.start()  # 318 KB is more than a socket buffer: send and receive at once, as the service does
    meta, payload = recv_frame(b)
    sender.join()
    sent = sent[0]
    assert (
        meta == {"op": "round", "round": 3} and sent == HEADER.size + len(b'{"op":"round","round":3}') + weights.nbytes
    )
    assert np.array_equal(payload.view(np.float32), weights)
    a.close()
    b.close()
