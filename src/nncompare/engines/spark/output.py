"""Where Spark's own output goes: one log file per session, not the terminal.

The JVM that pyspark launches prints log4j lines (its banner, the native-hadoop warning), the
JVM's own warnings and, through it, whatever the Python workers write to stderr; pyspark warns
about the pandas it finds. All of it goes to the session's ``spark.log``, named by ``-v`` and in
the record (``engine_info.log_file``). The launch reads its configuration from ``SPARK_CONF_DIR``
(Spark's own mechanism), pointed for that moment at the session's ``conf`` folder: a log4j2
configuration that writes to the file, and a ``spark-env.sh`` (which Spark's launch scripts source)
that sends the JVM's stdout and stderr there. The user's Spark configuration folder, if there is
one, is linked into it, so its spark-defaults.conf and spark-env.sh still apply.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

#: Where the sessions' folders go (default: the platform's user log folder).
LOG_DIR_ENV = "NNCOMPARE_LOG_DIR"
#: The Spark setting that names the session's log file (read back by the engine's ``describe``).
LOG_FILE_CONF = "spark.nncompare.logFile"
#: Sessions' folders kept; older ones are removed when a new one is made.
KEEP = 50

_LOG4J = """\
# written by nncompare for one Spark session: every log4j line goes to the session's log file
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log_file}
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d{{yy/MM/dd HH:mm:ss}} %p %c{{1}}: %m%n%ex
"""


def log_dir() -> Path:
    """``NNCOMPARE_LOG_DIR``, else the platform's user log folder for nncompare."""
    chosen = os.environ.get(LOG_DIR_ENV)
    if chosen:
        return Path(chosen)
    import platformdirs

    return platformdirs.user_log_path("nncompare")


def user_conf_dir() -> Path | None:
    """The Spark configuration folder a plain launch would read: ``SPARK_CONF_DIR``, else ``SPARK_HOME/conf``."""
    if os.environ.get("SPARK_CONF_DIR"):
        return Path(os.environ["SPARK_CONF_DIR"])
    home = os.environ.get("SPARK_HOME")
    if not home:
        import pyspark

        home = os.path.dirname(pyspark.__file__)
    conf = Path(home) / "conf"
    return conf if conf.is_dir() else None


@dataclass(frozen=True)
class SparkOutput:
    """One session's folder: its log file (``spark.log``) and the configuration its launch reads (``conf/``)."""

    folder: Path

    @property
    def log_file(self) -> Path:
        return self.folder / "spark.log"

    @property
    def conf_dir(self) -> Path:
        return self.folder / "conf"

    @property
    def conf(self) -> dict[str, str]:
        """The Spark setting that names the log file, so the running engine can say where it is."""
        return {LOG_FILE_CONF: str(self.log_file)}

    @classmethod
    def create(cls, parent: Path | None = None, user_conf: Path | None = None) -> SparkOutput:
        """A new session folder under ``parent`` (default :func:`log_dir`), its configuration written."""
        parent = log_dir() if parent is None else parent
        parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        for n in range(1000):
            folder = parent / f"spark-{stamp}-{os.getpid()}-{n}"
            try:
                folder.mkdir()
                break
            except FileExistsError:
                continue
        output = cls(folder)
        output._write_conf(user_conf_dir() if user_conf is None else user_conf)
        prune(parent)
        return output

    def _write_conf(self, user_conf: Path | None) -> None:
        conf = self.conf_dir
        conf.mkdir()
        user_env = None
        for entry in sorted(user_conf.iterdir()) if user_conf and user_conf.is_dir() else ():
            if entry.name == "spark-env.sh":
                user_env = entry
            else:
                (conf / entry.name).symlink_to(entry.resolve())
        if not (conf / "log4j2.properties").exists():  # the user's own log4j configuration wins
            (conf / "log4j2.properties").write_text(_LOG4J.format(log_file=self.log_file))
        lines = ["# written by nncompare: the JVM's stdout and stderr go to the session's log file"]
        if user_env is not None:
            lines.append(f". {shlex.quote(str(user_env))}")
        lines.append(f"exec >>{shlex.quote(str(self.log_file))} 2>&1")
        (conf / "spark-env.sh").write_text("\n".join(lines) + "\n")
        self.log_file.touch()

    @contextmanager
    def routed(self) -> Iterator[None]:
        """Around the session's launch: Spark reads this folder's configuration, and pyspark's warnings go
        to the log file; the environment and the warning display are as they were afterwards."""
        previous = os.environ.get("SPARK_CONF_DIR")
        os.environ["SPARK_CONF_DIR"] = str(self.conf_dir)
        try:
            with warnings.catch_warnings():
                shown = warnings.showwarning
                warnings.showwarning = self._pyspark_warnings_to_log(shown)
                yield
        finally:
            if previous is None:
                os.environ.pop("SPARK_CONF_DIR", None)
            else:
                os.environ["SPARK_CONF_DIR"] = previous

    def _pyspark_warnings_to_log(self, shown):
        package = f"{os.sep}pyspark{os.sep}"

        def show(message, category, filename, lineno, file=None, line=None):
            if package not in str(filename):
                return shown(message, category, filename, lineno, file, line)
            with open(self.log_file, "a") as log:
                log.write(warnings.formatwarning(message, category, filename, lineno, line))

        return show


def prune(parent: Path, keep: int = KEEP) -> None:
    """Remove all but the newest ``keep`` session folders under ``parent``."""
    folders = sorted((p for p in parent.glob("spark-*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in folders[:-keep] if keep > 0 else folders:
        shutil.rmtree(old, ignore_errors=True)


def first_line(exc: BaseException) -> str:
    """The line of a (Java-wrapped) Python error that says what happened, not the 200 lines around it."""
    text = str(exc)
    for pattern in (r"^\s*(\w+(?:Error|Exception): .+)$", r"(Job aborted due to stage failure: [^\n]+?)(?:\.|$)"):
        found = re.findall(pattern, text, flags=re.MULTILINE)
        if found:
            return found[-1].strip()[:300]
    return (text.strip().splitlines() or [type(exc).__name__])[0][:300]
