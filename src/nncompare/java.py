"""Find the Java that pyspark will launch, and say in one line what is wrong with it.

pyspark starts its JVM through ``spark-class``, which runs ``$JAVA_HOME/bin/java`` when
``JAVA_HOME`` is set and ``java`` from ``PATH`` otherwise. Without a usable Java, pyspark
fails after a few seconds with a long, unhelpful trace; checking first, the same way,
turns that into one actionable line.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from nncompare.errors import EngineError

#: Spark 4 runs on Java 17 and 21; Java 17 is its minimum.
SPARK_JAVA_MAJOR = 17

_VERSION = re.compile(r'version\s+"(\d+)(?:\.(\d+))?[^"]*"')


@dataclass(frozen=True)
class Java:
    path: str
    major: int
    version_line: str


def find_java(environ: dict | None = None) -> str | None:
    """The java executable spark-class would run, or None: ``$JAVA_HOME/bin/java`` wins over ``PATH``."""
    environ = os.environ if environ is None else environ
    home = environ.get("JAVA_HOME")
    if home:
        candidate = os.path.join(home, "bin", "java")
        return candidate if os.access(candidate, os.X_OK) else None
    return shutil.which("java", path=environ.get("PATH", ""))


def parse_major(version_output: str) -> int | None:
    """Major version from ``java -version`` output: '17.0.15' -> 17, the old '1.8.0_292' -> 8."""
    match = _VERSION.search(version_output)
    if not match:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2):
        major = int(match.group(2))
    return major


def require_java(min_major: int = SPARK_JAVA_MAJOR, environ: dict | None = None) -> Java:
    """Return the Java pyspark would use, or raise :class:`EngineError` with one line naming Java ``min_major``."""
    need = f"the Spark engine needs Java {min_major} or newer (pyspark 4 runs on Java 17 or 21)"
    environ = os.environ if environ is None else environ
    path = find_java(environ)
    if path is None:
        where = (
            f"JAVA_HOME={environ['JAVA_HOME']} has no bin/java"
            if environ.get("JAVA_HOME")
            else "no 'java' on PATH and JAVA_HOME is not set"
        )
        raise EngineError(f"{need}: {where}; install OpenJDK {min_major} and set JAVA_HOME")
    try:
        run = subprocess.run([path, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineError(f"{need}: running {path} -version failed ({exc})") from None
    output = run.stderr + run.stdout
    major = parse_major(output)
    if major is None:
        raise EngineError(f"{need}: cannot read the version of {path}")
    if major < min_major:
        raise EngineError(f"{need}: {path} is Java {major}; install OpenJDK {min_major} and point JAVA_HOME at it")
    first = next((line.strip() for line in output.splitlines() if "version" in line), output.strip())
    return Java(path, major, first)
