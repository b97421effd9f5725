"""The Spark engine on a real local SparkSession: results, round cost, faults, the token, the Java check.

One session (2 slots of 1 core) serves every test here; each test starts its own barrier
stage on it, as a run does.
"""

from __future__ import annotations

import socket
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("pyspark")

from nncompare.averaging import average_weights  # noqa: E402
from nncompare.engines.local import LocalEngine  # noqa: E402
from nncompare.engines.spark import FAIL_ROUND_ENV, FAIL_TIMES_ENV, SparkEngine, build_session, session_conf, stop_session  # noqa: E402
from nncompare.engines.weight_service import HEADER, MAGIC  # noqa: E402
from nncompare.errors import EngineError, UsageError  # noqa: E402
from nncompare.java import parse_major, require_java  # noqa: E402
from nncompare.job import JobSpec, ModelSpec, Topology  # noqa: E402
from nncompare.partition import make_shards  # noqa: E402
from nncompare.record import PHASES, RECORD_KEYS  # noqa: E402
from nncompare.trainer import ShardTrainer  # noqa: E402
from nncompare.training import run_job  # noqa: E402

TWO_BY_ONE = Topology(workers=2, cores_per_worker=1)
DIGITS_MODEL = ModelSpec(hidden_layer_sizes=(32,), batch_size=64, learning_rate_init=0.01)


@pytest.fixture(scope="module")
def spark_session():
    try:
        require_java()
    except EngineError as exc:
        pytest.skip(str(exc))
    session = build_session(JobSpec(dataset="digits", engine="spark", topology=TWO_BY_ONE))
    yield session
    stop_session(session)


def on_session(session):
    """An engine factory for run_job that uses the shared session instead of starting one."""
    return lambda spec, cluster=None: SparkEngine(spec, cluster, session=session)


def _closed_by_server(sock: socket.socket, timeout: float = 10.0) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def intrude(address) -> list[bool]:
    """Knock on the weight service the ways a stranger could; True for each connection it dropped."""
    attempts = []
    wrong = b'{"op":"hello","token":"0000","partition":0,"tid":999999}'
    for payload in (HEADER.pack(MAGIC, len(wrong), 0) + wrong,                 # well-formed, wrong token
                    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",                       # not our protocol
                    HEADER.pack(MAGIC, 1 << 30, 0)):                           # asks us to read a GiB first
        sock = socket.create_connection(address, timeout=10)
        sock.sendall(payload)
        attempts.append(_closed_by_server(sock))
        sock.close()
    return attempts


@pytest.fixture(scope="module")
def fashion_rounds(spark_session, fashion):
    """Four rounds of 784-100-10 on 4000 Fashion-MNIST samples, on Spark and on the local engine.

    A stranger knocks on the weight service after the first round; the rounds go on.
    """
    spec = JobSpec(dataset="fashion-mnist", engine="spark", train_samples=4000, topology=TWO_BY_ONE)
    shards = make_shards(fashion.x_train[:4000], fashion.y_train[:4000], 2, spec.partition, spec.model.seed)
    local = LocalEngine(spec.with_(engine="local"))
    local.start()
    local.place(shards, fashion.classes)
    engine = SparkEngine(spec, session=spark_session)
    results, intruders = [], []
    try:
        engine.start()
        engine.place(shards, fashion.classes)
        w_spark = w_local = None
        for r in range(4):
            res = engine.run_round(w_spark)
            res_local = local.run_round(w_local)
            w_spark = average_weights([u.weights for u in res.updates], [u.n_samples for u in res.updates])
            w_local = average_weights([u.weights for u in res_local.updates], [u.n_samples for u in res_local.updates])
            results.append(SimpleNamespace(result=res, spark=w_spark.copy(), local=w_local.copy()))
            if r == 0:
                intruders = intrude(engine.service.address)
        info = engine.describe()
    finally:
        engine.close()
    return SimpleNamespace(rounds=results, info=info, intruders=intruders)


@pytest.mark.slow
def test_averaged_weights_match_the_local_engine_round_by_round(fashion_rounds):
    for i, r in enumerate(fashion_rounds.rounds, start=1):
        assert r.spark.dtype == np.float32 and r.spark.shape == r.local.shape
        assert np.abs(r.spark - r.local).max() <= 1e-5, f"round {i}"
    # and the rounds did train: the weights moved
    assert np.abs(fashion_rounds.rounds[-1].spark - fashion_rounds.rounds[0].spark).max() > 1e-3


@pytest.mark.slow
def test_a_round_moves_weights_in_far_less_than_a_barrier_allgather(fashion_rounds):
    """One allGather costs ~1 s; the socket service moves 2 x 318 KB each way in milliseconds."""
    steady = [r.result for r in fashion_rounds.rounds[1:]]
    transfers = [r.transfer_s for r in steady]
    assert float(np.median(transfers)) < 0.1, transfers
    assert max(transfers) < 0.9, transfers
    for r in steady:
        assert len(r.extra["wire_s"]) == 2
        assert r.compute_s == max(u.compute_s for u in r.updates) > 0
    assert fashion_rounds.info["barrier_stage_attempts"] == 1


@pytest.mark.slow
def test_strangers_are_dropped_without_touching_training(fashion_rounds):
    assert fashion_rounds.intruders == [True, True, True]
    assert fashion_rounds.info["connections_rejected"] == 3
    assert fashion_rounds.info["connections_accepted"] == 2
    assert len(fashion_rounds.rounds) == 4  # the match with the local engine is checked above, strangers and all


@pytest.mark.slow
def test_run_job_on_local_spark_end_to_end(spark_session, digits):
    spec = JobSpec(dataset="digits", engine="spark", epochs=3, model=DIGITS_MODEL, topology=TWO_BY_ONE)
    record = run_job(spec, dataset=digits, engine_factory=on_session(spark_session))
    assert set(RECORD_KEYS) <= set(record) and set(record["phases_s"]) == set(PHASES)
    assert sum(record["phases_s"].values()) == pytest.approx(record["wall_s"] - record["startup_s"], rel=1e-6)
    assert record["epochs_run"] == 3 and record["test_accuracy"] > 0.8
    info = record["engine_info"]
    assert info["master"].startswith("local[2") and info["settings"]["spark.task.cpus"] == "1"
    assert len({t["worker"] for t in info["tasks"]}) == 2
    # the tasks are other processes, and their memory is reported apart from the driver's
    assert len(record["peak_rss_bytes"]["per_worker"]) == 2 and record["peak_rss_bytes"]["workers"] > 0
    local = run_job(spec.with_(engine="local"), dataset=digits)
    assert record["test_accuracy"] == pytest.approx(local["test_accuracy"], abs=1e-9)


# Known flake (not yet understood): in roughly one run in five, a barrier attempt that Spark
# retries after an injected task failure connects only one of its two tasks, and the run stops
# on the connect timeout. These tests bound that wait at 60 s and run once more when it happens;
# the assertions are unchanged. See the closing note of issue 6.
RETRY_FLAKY_BARRIER = pytest.mark.flaky(reruns=1)


@pytest.mark.slow
@RETRY_FLAKY_BARRIER
def test_a_failed_task_resumes_from_the_last_averaged_weights(spark_session, digits, monkeypatch):
    monkeypatch.setenv("NNCOMPARE_SPARK_CONNECT_TIMEOUT", "60")
    monkeypatch.setenv(FAIL_ROUND_ENV, "2")
    spec = JobSpec(dataset="digits", engine="spark", model=DIGITS_MODEL, topology=TWO_BY_ONE)
    shards = make_shards(digits.x_train, digits.y_train, 2, spec.partition, spec.model.seed)
    engine = SparkEngine(spec, session=spark_session)
    with engine:
        engine.place(shards, digits.classes)
        first = engine.run_round(None)
        w1 = average_weights([u.weights for u in first.updates], [u.n_samples for u in first.updates])
        second = engine.run_round(w1)
        w2 = average_weights([u.weights for u in second.updates], [u.n_samples for u in second.updates])
        third = engine.run_round(w2)
        info = engine.describe()
    assert "resumed" not in first.extra and second.extra["resumed"] == 1 and "resumed" not in third.extra
    assert info["barrier_stage_attempts"] == 2
    assert len(info["task_failures"]) == 1 and "round 2" in info["task_failures"][0]

    def fresh_average(weights):
        ups = [ShardTrainer(s.index, s.x, s.y, digits.classes, spec.model).train_round(weights) for s in shards]
        return average_weights([u.weights for u in ups], [u.n_samples for u in ups])

    # round 2 ran on new tasks from w1 (fresh trainers primed with it), not from the start
    assert np.abs(w2 - fresh_average(w1)).max() <= 1e-5
    assert np.abs(w2 - fresh_average(None)).max() > 1e-3


@pytest.mark.slow
@RETRY_FLAKY_BARRIER
def test_a_failure_mid_epoch_keeps_the_epochs_aligned(spark_session, digits, monkeypatch):
    """With several rounds per epoch, the replacement tasks join at the interrupted round's slice."""
    monkeypatch.setenv("NNCOMPARE_SPARK_CONNECT_TIMEOUT", "60")
    monkeypatch.setenv(FAIL_ROUND_ENV, "3")
    spec = JobSpec(dataset="digits", engine="spark", epochs=2, sync_every=2, model=DIGITS_MODEL, topology=TWO_BY_ONE,
                   convergence_stop=False)
    record = run_job(spec, dataset=digits, engine_factory=on_session(spark_session))
    assert record["rounds_per_epoch"] == 6 and len(record["rounds"]) == 12
    assert [r.get("resumed", 0) for r in record["rounds"]] == [0, 0, 1] + [0] * 9
    assert record["epochs_run"] == 2 and all(np.isfinite(record["loss_curve"]))
    assert record["test_accuracy"] > 0.8


@pytest.mark.slow
def test_when_spark_gives_up_the_run_stops_with_one_line_and_no_record(spark_session, digits, monkeypatch):
    monkeypatch.setenv(FAIL_ROUND_ENV, "1")
    monkeypatch.setenv(FAIL_TIMES_ENV, "99")  # every attempt fails: Spark's 4 attempts run out
    # Known: in about one run in five here, the last attempt gets only one of its two tasks
    # connected, and the run then stops on the connect timeout instead of Spark's own
    # give-up; either way it must stop, in one line, without a record.
    monkeypatch.setenv("NNCOMPARE_SPARK_CONNECT_TIMEOUT", "30")
    spec = JobSpec(dataset="digits", engine="spark", epochs=2, model=DIGITS_MODEL, topology=TWO_BY_ONE)
    start = time.monotonic()
    with pytest.raises(EngineError) as error:
        run_job(spec, dataset=digits, engine_factory=on_session(spark_session))
    message = str(error.value)
    assert "\n" not in message, message
    if "did not connect" not in message:
        assert "gave up" in message or "failed 4 times" in message, message
        assert "injected failure" in message
    assert time.monotonic() - start < 240
    # the session survives for the next run
    assert spark_session.sparkContext.parallelize([1, 2], 2).sum() == 3


def test_session_settings_follow_the_topology():
    spec = JobSpec(dataset="digits", engine="spark", topology=Topology(workers=3, cores_per_worker=2, memory_per_worker_bytes=2 * 2**30))
    conf = session_conf(spec)
    assert conf["spark.master"] == "local[6,4]"
    assert (conf["spark.executor.instances"], conf["spark.executor.cores"], conf["spark.task.cpus"]) == ("3", "2", "2")
    assert conf["spark.executor.memory"] == "2048m" and conf["spark.executorEnv.OMP_NUM_THREADS"] == "2"
    assert conf["spark.driver.host"] == "127.0.0.1"
    remote = session_conf(spec, "spark://spark-master.example:7077")
    assert remote["spark.master"] == "spark://spark-master.example:7077" and "spark.driver.host" not in remote
    assert session_conf(spec, "yarn")["spark.master"] == "yarn"
    with pytest.raises(UsageError):
        session_conf(spec, "tcp://127.0.0.1:8786")


def test_java_versions_are_read_like_the_jvm_prints_them():
    assert parse_major('openjdk version "17.0.15" 2025-04-15') == 17
    assert parse_major('java version "1.8.0_292"') == 8
    assert parse_major('openjdk version "21" 2023-09-19') == 21
    assert parse_major("no java here") is None


def test_cli_without_java_fails_with_one_line_naming_java_17(monkeypatch, capfd, tmp_path):
    from nncompare.cli import main

    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-java"))
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--engine", "spark", "--dataset", "digits", "--epochs", "1", "-q"])
    err = capfd.readouterr().err.strip()
    assert exit_info.value.code == 1
    assert len(err.splitlines()) == 1 and "Java 17" in err and err.startswith("nncompare: error:")


def test_wrong_java_version_is_named(tmp_path):
    fake = tmp_path / "jdk8" / "bin"
    fake.mkdir(parents=True)
    (fake / "java").write_text('#!/bin/sh\necho \'java version "1.8.0_292"\' >&2\n')
    (fake / "java").chmod(0o755)
    with pytest.raises(EngineError, match="Java 17.*Java 8"):
        require_java(environ={"JAVA_HOME": str(tmp_path / "jdk8")})


def test_frames_carry_weights_bit_for_bit():
    from nncompare.engines.weight_service import recv_frame, send_frame

    a, b = socket.socketpair()
    weights = np.random.RandomState(0).standard_normal(79510).astype(np.float32)
    sent = []
    sender = threading.Thread(target=lambda: sent.append(send_frame(a, {"op": "round", "round": 3}, weights)))
    sender.start()  # 318 KB is more than a socket buffer: send and receive at once, as the service does
    meta, payload = recv_frame(b)
    sender.join()
    sent = sent[0]
    assert meta == {"op": "round", "round": 3} and sent == HEADER.size + len(b'{"op":"round","round":3}') + weights.nbytes
    assert np.array_equal(payload.view(np.float32), weights)
    a.close()
    b.close()
