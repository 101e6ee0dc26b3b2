"""Real servers started by the tests on 127.0.0.1: PostgreSQL (Debian's binaries)."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """A throw-away PostgreSQL cluster on 127.0.0.1:<port>, run as the 'postgres' user when root."""

    def __init__(self, port: int, password: str = "crm-test-pw"):
        self.bin = postgres_bin()
        if self.bin is None:
            raise RuntimeError("PostgreSQL server binaries not installed (apt-get install postgresql)")
        self.port = port
        self.password = password
        self.dir = Path(tempfile.mkdtemp(prefix="churn-pg-"))
        self.as_root = os.geteuid() == 0

    def _run(self, *cmd: str, **kw) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        return subprocess.run([*prefix, *cmd], check=True, capture_output=True, text=True, **kw)

    def start(self) -> "PostgresServer":
        if self.as_root:
            shutil.chown(self.dir, "postgres", "postgres")
        pwfile = self.dir / "pw"
        pwfile.write_text(self.password)
        if self.as_root:
            shutil.chown(pwfile, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.dir / "data"), "-U", "postgres",
                  "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w",
                  "-o", f"-c listen_addresses=127.0.0.1 -c port={self.port} -k {self.dir} -c fsync=off", "start")
        deadline = time.time() + 30
        while time.time() < deadline:
            r = subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port)],
                               capture_output=True)
            if r.returncode == 0:
                break
            time.sleep(0.3)
        env = dict(os.environ, PGPASSWORD=self.password)
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-c",
                        "CREATE DATABASE crm"], check=True, capture_output=True, env=env)
        return self

    @property
    def url(self) -> str:
        return f"postgresql://postgres:{self.password}@127.0.0.1:{self.port}/crm"

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/crm"

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


ROOT = Path(__file__).resolve().parents[1]


class HdfsMiniCluster:
    """A real HDFS (NameNode + DataNode in one JVM) from Hadoop's minicluster artifact, on 127.0.0.1."""

    def __init__(self, nn_port: int, http_port: int, jars: Path | None = None):
        self.jars = jars or ROOT / ".jars" / "minicluster"
        self.nn_port, self.http_port = nn_port, http_port
        self.dir = Path(tempfile.mkdtemp(prefix="churn-hdfs-"))
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90) -> "HdfsMiniCluster":
        if not any(self.jars.glob("hadoop-client-minicluster-*.jar")):
            raise RuntimeError(f"minicluster JARs missing in {self.jars}; run `make jars`")
        details = self.dir / "details.json"
        cmd = ["java", "--add-opens", "java.base/java.lang=ALL-UNNAMED", "-Xmx768m",
               "-cp", f"{self.jars}/*", "org.apache.hadoop.mapreduce.MiniHadoopClusterManager",
               "-nomr", "-format", "-nnport", str(self.nn_port), "-nnhttpport", str(self.http_port),
               "-writeDetails", str(details)]
        self.log = open(self.dir / "minicluster.log", "w")
        self.proc = subprocess.Popen(cmd, cwd=self.dir, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.time() + timeout
        import urllib.request

        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"minicluster exited with {self.proc.returncode}; see {self.dir}/minicluster.log")
            if details.exists() and details.stat().st_size:
                try:
                    with urllib.request.urlopen(f"{self.webhdfs_url}/webhdfs/v1/?op=LISTSTATUS", timeout=5):
                        return self
                except OSError:
                    pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"HDFS minicluster did not come up within {timeout}s")

    @property
    def uri(self) -> str:
        return f"hdfs://127.0.0.1:{self.nn_port}"

    @property
    def webhdfs_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            import signal

            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)
