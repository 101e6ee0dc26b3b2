"""Building the one Spark session a job uses.

The session gets Delta's extension and catalog, the locally resolved JARs (Delta, Deequ, JDBC
drivers; see ``jvm/runtime/pom.xml``), UTC time and whatever ``spark.conf`` in config adds. It never
hard-codes a master: under ``spark-submit`` the master comes from ``--master``; when a command runs
in plain Python (tests, ``lakehouse run``), ``spark.default_master`` from config is used.
"""

from __future__ import annotations

import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from lakehouse.config import Settings
from lakehouse.errors import ConfigError
from lakehouse.jvm_names import remember_names

log = logging.getLogger(__name__)

# pydeequ refuses to import without it; it must match the Spark minor of the installed pyspark.
DEEQU_SPARK_VERSION = "3.5"


def prepare_environment() -> None:
    """Environment every Spark process here needs: pydeequ's version key, and Python workers that run this
    interpreter (PySpark's default is the first ``python3`` on PATH, which need not be the project's
    virtualenv and lacks its packages; ``PYSPARK_PYTHON`` set outside still wins)."""
    os.environ.setdefault("SPARK_VERSION", DEEQU_SPARK_VERSION)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")


def spark_home() -> Path:
    """The installed pyspark package's folder: Spark's ``bin/`` (spark-submit, spark-class) is in it."""
    import pyspark

    return Path(pyspark.__file__).parent


def runtime_jars(settings: Settings) -> list[Path]:
    """The JAR files Spark must load, resolved by ``make jars``; a clear error when missing."""
    folder = settings.path(settings.spark.jars_dir)
    jars = sorted(folder.glob("*.jar")) if folder.is_dir() else []
    needed = ("delta-spark", "delta-storage", "deequ")
    missing = [n for n in needed if not any(j.name.startswith(n) for j in jars)]
    if missing:
        raise ConfigError(
            f"JARs {missing} not found in {folder} (spark.jars_dir); run `make jars` to resolve them with Maven"
        )
    return jars


# The driver JVM's class-data-sharing archive, built by ``lakehouse.jvm_archive`` (``make cds``).
LOG_TO_STDERR = "-Xlog:disable -Xlog:all=warning:stderr"


def java_options(archive: Path) -> str:
    """Driver JVM options that map ``archive`` (a JVM skips a missing archive without a word)."""
    return f"-XX:SharedArchiveFile={archive} {LOG_TO_STDERR}"


def archive_path(settings) -> Path | None:
    """The archive configured in ``spark.class_archive`` if it has been built, else None."""
    if not settings.spark.class_archive:
        return None
    path = settings.path(settings.spark.class_archive)
    return path if path.is_file() else None


# JIT options for a JVM that lives about a minute (a spark-submitted job on small data): the C1 compiler
# only, with room for its code. Too short a life for C2's code to pay for its compiling (a long
# session is the other way round: docs/benchmarks.md).
SHORT_JVM = "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m"


def driver_launch_conf(settings) -> dict[str, str]:
    """What spark-submit must give a job's driver JVM for ``settings`` (as the Airflow DAG does): every
    ``LAUNCH_ONLY_CONF`` key the environment's ``spark.conf`` sets (the driver memory unless ``auto``:
    spark-submit's own then), with options that map the class archive, if one was built, ahead of the
    environment's own JVM options."""
    wanted = settings.spark.conf
    conf = {key: str(wanted[key]) for key in LAUNCH_ONLY_CONF if wanted.get(key) is not None}
    if conf.get("spark.driver.memory") == AUTO:
        del conf["spark.driver.memory"]
    archive = archive_path(settings)
    if archive:
        options = " ".join(filter(None, [java_options(archive), conf.get("spark.driver.extraJavaOptions")]))
        conf["spark.driver.extraJavaOptions"] = options
    return conf


# Settings read only when the driver JVM starts: under spark-submit that JVM is already running when
# the job reads its config, so these must be given to spark-submit (--conf, the Airflow operator).
LAUNCH_ONLY_CONF = ("spark.driver.memory", "spark.driver.extraJavaOptions", "spark.driver.extraClassPath",
                    "spark.driver.extraLibraryPath", "spark.jars.packages")


# Launch settings that are lists of JVM options: the submitted value may carry more options than the
# config asks for (the Airflow DAG adds the class archive's), so each wanted option must be in it.
OPTION_LISTS = ("spark.driver.extraJavaOptions",)


def _launch_conf_holds(key: str, wanted: str, submitted: str | None) -> bool:
    if submitted is None:
        return False
    if key in OPTION_LISTS:
        return set(wanted.split()) <= set(submitted.split())
    return submitted == wanted


def ignored_launch_conf(wanted: dict[str, str], submitted: dict[str, str]) -> list[str]:
    """Launch-time settings of ``wanted`` (the config's spark.conf) that the running driver JVM,
    started by spark-submit with ``submitted``, does not have: one line per key."""
    return [f"{key}={wanted[key]!r} (spark-submit gave {submitted.get(key, 'nothing')!r})"
            for key in LAUNCH_ONLY_CONF
            if key in wanted and not _launch_conf_holds(key, str(wanted[key]), submitted.get(key))]


AUTO = "auto"


def auto_driver_memory(total_bytes: int | None = None) -> str:
    """``spark.driver.memory: auto``: a third of the machine's physical memory in whole GiB, at least 2g
    and at most 16g (24 GiB -> 8g). In local mode the driver JVM is all of Spark (its tasks run in it);
    the rest is left to the Python workers, the page cache that reads the lake, and other processes."""
    if total_bytes is None:
        total_bytes = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return f"{min(16, max(2, int(total_bytes / 3 / 2**30)))}g"


def build_session(settings: Settings, app_name: str, extra_conf: dict[str, str] | None = None):
    """Create (or return the running) SparkSession configured for this project."""
    prepare_environment()
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        # launched by spark-submit: join its JVM first, so SparkConf sees --master/--jars/--conf
        SparkContext._ensure_initialized()
    # in plain Python the JVM starts inside getOrCreate(), with the master and JARs set below on
    # its command line (JDBC drivers must be on the driver's classpath from the start)
    submitted = SparkConf()
    builder = SparkSession.builder.appName(f"{settings.spark.app_prefix}-{app_name}")
    master = submitted.get("spark.master", None)
    if not master:
        if not settings.spark.default_master:
            raise ConfigError(
                "no Spark master: run through spark-submit --master ..., or set spark.default_master "
                f"in conf/{settings.env}"
            )
        master = settings.spark.default_master
        builder = builder.master(master)
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = builder.config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")

    jars = [str(j) for j in runtime_jars(settings)]
    already = submitted.get("spark.jars", "")
    if not already:
        builder = builder.config("spark.jars", ",".join(jars))
    conf = dict(settings.spark.conf)
    conf.update(extra_conf or {})
    if conf.get("spark.driver.memory") == AUTO:
        if os.environ.get("PYSPARK_GATEWAY_PORT"):
            del conf["spark.driver.memory"]  # under spark-submit: the memory it was given
        else:
            conf["spark.driver.memory"] = auto_driver_memory()
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        ignored = ignored_launch_conf(conf, dict(submitted.getAll()))
        if ignored:
            log.warning("the driver JVM was started by spark-submit without %s from conf/%s: pass them to "
                        "spark-submit (--conf, or the Airflow operator's conf); they cannot change now",
                        "; ".join(ignored), settings.env)
    else:
        # the JVM starts below: map the class archive if one was built (see lakehouse.jvm_archive)
        archive = archive_path(settings)
        if archive:
            conf["spark.driver.extraJavaOptions"] = " ".join(
                filter(None, [conf.get("spark.driver.extraJavaOptions"), java_options(archive)]))
    for key, value in conf.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    remember_names(spark.sparkContext._jvm)  # each Java name looked up once (lakehouse.jvm_names)
    options = spark.sparkContext.getConf().get("spark.driver.extraJavaOptions", "")
    archive_used = next((o.split("=", 1)[1] for o in options.split() if o.startswith("-XX:SharedArchiveFile=")), None)
    log.info("spark session %s on %s (Spark %s; %s)", app_name, spark.sparkContext.master, spark.version,
             f"class archive {archive_used}" if archive_used else "no class archive")
    return spark


CODE_GENERATION = {"spark.sql.codegen.wholeStage": "true", "spark.sql.codegen.factoryMode": "FALLBACK"}


def interpreted(spark) -> bool:
    """Whether ``spark`` runs Spark SQL interpreted (the local and test overlays)."""
    return spark.conf.get("spark.sql.codegen.wholeStage", "true").lower() == "false"


def estimated_mb(df) -> float:
    """Spark's size estimate of ``df`` in MiB: for a Delta read, the files left after partition pruning."""
    return df._jdf.queryExecution().optimizedPlan().stats().sizeInBytes() / 2**20  # (py4j: a Python int)


# bytes Spark's columnar cache takes per byte of the Parquet files the rows were read from: 10.9 for the
# web events' checked rows at 100,000 customers, 6.5-14 over the simulator's tables (docs/benchmarks.md)
CACHE_PER_FILE_BYTE = 12.0


def storage_memory_mb(spark) -> float:
    """The storage memory, in MiB, of the block managers that hold cached blocks: the driver's in
    local mode, the executors' on a cluster (the driver's while none has registered yet)."""
    context = spark.sparkContext._jsc.sc()
    driver = context.env().blockManager().blockManagerId().hostPort()
    sizes = {}
    entries = context.getExecutorMemoryStatus().iterator()  # (py4j: a Scala map of host:port -> (max, free))
    while entries.hasNext():
        entry = entries.next()
        sizes[entry._1()] = entry._2()._1()
    executors = [size for where, size in sizes.items() if where != driver] or list(sizes.values())
    return sum(executors) / 2**20


def cache_level(spark, choice: str, files_mb: float, label: str):
    """The storage level to cache rows read from ``files_mb`` of Parquet files at: ``choice`` "memory"
    (what ``DataFrame.cache`` uses: memory, spilling to disk what does not fit) or "disk" (local disk
    only), or "auto": on disk when the cache, estimated at ``CACHE_PER_FILE_BYTE`` per file byte,
    would fill more than half of the storage memory. Past that, Spark's cache computes a partition
    in memory before it finds no room, drops it to disk and evicts other cached blocks on the way."""
    from pyspark import StorageLevel

    if choice == "auto":
        cache_mb, room_mb = files_mb * CACHE_PER_FILE_BYTE, storage_memory_mb(spark)
        choice = "disk" if cache_mb > room_mb / 2 else "memory"
        log.info("%s: cache of about %.0f MiB (%.1f MiB of files) %s half of %.0f MiB of storage memory: %s",
                 label, cache_mb, files_mb, "over" if choice == "disk" else "within", room_mb,
                 "on disk only" if choice == "disk" else "in memory")
    if choice not in ("memory", "disk"):
        raise ConfigError(f"a cache is kept in 'memory', on 'disk' or where it fits ('auto'), not {choice!r}")
    return StorageLevel.DISK_ONLY if choice == "disk" else StorageLevel.MEMORY_AND_DISK_DESER


def worth_compiling(spark, settings: Settings, size_mb: float) -> bool:
    """Whether work over ``size_mb`` of data should run with code generation: ``spark`` runs SQL
    interpreted (the local and test overlays, which suit small dates) and ``size_mb`` is at least
    ``quality.compile_min_mb`` (None: never)."""
    limit = settings.quality.compile_min_mb
    return limit is not None and interpreted(spark) and size_mb >= limit


@contextmanager
def compiled_everywhere(spark, on: bool):
    """Spark's code generation for the block on ``spark`` and every session ``lakehouse.parallel``
    hands out (``parallel.everywhere``), if ``on``."""
    if not on:
        yield
        return
    from lakehouse.parallel import everywhere

    with everywhere(spark, CODE_GENERATION):
        yield


@contextmanager
def session_conf(spark, values: dict[str, str]):
    """``values`` set on ``spark``'s SQL settings for the block, then each put back as it was (unset
    if it was not set)."""
    before = {k: spark.conf.get(k, None) for k in values}
    for k, v in values.items():
        spark.conf.set(k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)
