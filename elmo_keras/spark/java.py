"""Is there a Java runtime for Spark? Checked before any Spark work, without importing PySpark."""

import os
import re
import shutil
import subprocess

MIN_JAVA = 17
INSTALL_HINT = (f"install a Java {MIN_JAVA}+ runtime (Debian/Ubuntu: apt-get install openjdk-{MIN_JAVA}-jre-headless) "
                f"and put `java` on PATH or set JAVA_HOME")


def java_executable():
    """The `java` Spark will run: JAVA_HOME/bin/java if JAVA_HOME is set, else `java` on PATH; or None."""
    home = os.environ.get("JAVA_HOME")
    if home:
        path = os.path.join(home, "bin", "java")
        return path if os.path.isfile(path) and os.access(path, os.X_OK) else None
    return shutil.which("java")


def java_major_version(java):
    """The major version `java -version` reports (17 for "17.0.15", 8 for "1.8.0_402"), or None."""
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def check_java():
    """The path of a Java 17+ runtime; raise RuntimeError (one line, what to install) when there is none."""
    java = java_executable()
    if java is None:
        where = (f"JAVA_HOME={os.environ['JAVA_HOME']} has no bin/java" if os.environ.get("JAVA_HOME")
                 else "no `java` on PATH and JAVA_HOME is not set")
        raise JavaNotFoundError(f"Spark needs Java: {where}; {INSTALL_HINT}")
    major = java_major_version(java)
    if major is not None and major < MIN_JAVA:
        raise JavaNotFoundError(f"Spark needs Java {MIN_JAVA} or newer, {java} is Java {major}; {INSTALL_HINT}")
    return java


class JavaNotFoundError(OSError):
    """No usable Java runtime for Spark (an OSError, so that the command line reports it as one line)."""
