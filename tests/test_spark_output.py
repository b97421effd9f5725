"""Spark's own output goes to a session's log file: the configuration its launch reads, and its limits.

The launch itself (a real JVM writing there, nothing on the terminal) is tested in
tests/test_terminal.py; these tests look at what nncompare writes for it, with no JVM.
"""

from __future__ import annotations

import os
import subprocess
import warnings

from nncompare.engines.spark.output import KEEP, LOG_DIR_ENV, LOG_FILE_CONF, SparkOutput, log_dir, prune


def test_a_session_folder_sends_log4j_and_the_jvms_output_to_its_log(tmp_path):
    output = SparkOutput.create(tmp_path, user_conf=tmp_path / "none")
    assert output.folder.parent == tmp_path and output.log_file.exists()
    assert output.conf == {LOG_FILE_CONF: str(output.log_file)}
    log4j = (output.conf_dir / "log4j2.properties").read_text()
    assert f"appender.file.fileName = {output.log_file}" in log4j and "rootLogger.appenderRef.file.ref = file" in log4j
    # what Spark's launch scripts do with spark-env.sh: source it, then run the JVM
    shell = f". {output.conf_dir / 'spark-env.sh'}; echo to-stdout; echo to-stderr >&2"
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""
    assert output.log_file.read_text() == "to-stdout\nto-stderr\n"


def test_the_users_spark_configuration_still_applies(tmp_path):
    user = tmp_path / "user-conf"
    user.mkdir()
    (user / "spark-defaults.conf").write_text("spark.executor.memory 3g\n")
    (user / "spark-env.sh").write_text("export FROM_USER_ENV=yes\n")
    output = SparkOutput.create(tmp_path / "logs", user_conf=user)
    linked = output.conf_dir / "spark-defaults.conf"
    assert linked.is_symlink() and linked.read_text() == "spark.executor.memory 3g\n"
    done = subprocess.run(
        ["bash", "-c", f". {output.conf_dir / 'spark-env.sh'}; echo $FROM_USER_ENV >&2"], capture_output=True, text=True
    )
    assert done.stderr == "" and output.log_file.read_text() == "yes\n"
    (user / "log4j2.properties").write_text("# the user's own\n")
    again = SparkOutput.create(tmp_path / "logs", user_conf=user)
    assert (again.conf_dir / "log4j2.properties").read_text() == "# the user's own\n"  # theirs wins


def test_the_launch_reads_the_folder_and_pyspark_warnings_go_to_the_log(tmp_path, monkeypatch, recwarn):
    monkeypatch.setenv("SPARK_CONF_DIR", "/the/users/own")
    output = SparkOutput.create(tmp_path, user_conf=tmp_path / "none")
    shown = []
    monkeypatch.setattr(warnings, "showwarning", lambda *args, **kwargs: shown.append(args[0]))
    with output.routed():
        assert os.environ["SPARK_CONF_DIR"] == str(output.conf_dir)
        warnings.simplefilter("always")
        warnings.warn_explicit("pandas too new", FutureWarning, f"{os.sep}x{os.sep}pyspark{os.sep}testing.py", 1)
        warnings.warn_explicit("someone else's", UserWarning, "/x/elsewhere.py", 2)
    assert os.environ["SPARK_CONF_DIR"] == "/the/users/own"
    assert "FutureWarning: pandas too new" in output.log_file.read_text()
    assert [str(w) for w in shown] == ["someone else's"]


def test_old_sessions_are_pruned_and_the_folder_is_chosen_by_its_variable(tmp_path, monkeypatch):
    for n in range(KEEP + 3):
        folder = tmp_path / f"spark-2026-{n:03d}"
        folder.mkdir()
        os.utime(folder, (n, n))
    prune(tmp_path)
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert len(kept) == KEEP and kept[0] == "spark-2026-003"
    monkeypatch.setenv(LOG_DIR_ENV, str(tmp_path / "chosen"))
    assert log_dir() == tmp_path / "chosen"
