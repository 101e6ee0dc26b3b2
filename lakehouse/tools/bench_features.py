"""Feature-build benchmark: Spark (full and incremental) against DuckDB and pandas on the same events.

``lakehouse bench features --customers 10000,100000 --history 30,365`` generates, per scale, an
event table (Parquet, one file per day; ~0.3 events per customer and day, a tenth of them payments)
and computes one as-of-date feature row per customer seen so far, for the last day D:

    total_spend, spend_30d, spend_90d       (amounts in cents: sums are exact in every engine)
    events_7d, events_30d, days_since_last_event

by four routes, each checked equal to the DuckDB result (every column, every customer):

* ``duckdb``: one SQL query over the Parquet files (threads = cores);
* ``pandas``: read the needed columns, one groupby;
* ``spark full``: the same SQL in Spark over the Parquet files (warm session: JVM start excluded);
* ``spark incremental``: the daily update the pipeline's design calls for. It keeps per-customer
  state as of D-1 (running totals, the window sums, the last event date) and per-day aggregates, and
  for D reads only D's events, the state and the three day-aggregate partitions that leave the
  windows (D-7, D-30, D-90): the cost follows customers and one day's events, not history length.
  Once every history of a customer count is built, the day also runs on each of them back to back
  in a few paired rounds, for the ratio between history lengths.

Per step: wall seconds, events per second, peak resident memory of this process and its children
(the Spark JVM) sampled every 50 ms, and files and bytes written. Results go to
``bench-results/features.json`` and ``docs/benchmarks-features.md`` (table + plot). Nothing here
asserts a target: people read the numbers.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import operator
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial, reduce
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse.tools.bench import machine

log = logging.getLogger(__name__)
START = dt.date(2025, 1, 1)
WINDOWS = {"spend_30d": ("cents", 30), "spend_90d": ("cents", 90), "events_7d": ("n", 7), "events_30d": ("n", 30)}
FEATURES = ["customer_id", "total_spend", "spend_30d", "spend_90d", "events_7d", "events_30d", "days_since_last_event"]


# ---- data ---------------------------------------------------------------------------------------

def generate_events(folder: Path, customers: int, days: int, seed: int = 7, rate: float = 0.3) -> dict:
    """Events of ``customers`` over ``days`` days into ``folder/date=YYYY-MM-DD/part-0.parquet``.

    Each customer has an activity level (gamma, mean ``rate`` events a day) and a first day (a third
    arrive during the period); an event is a payment with probability 0.1 (amount in cents)."""
    rng = np.random.default_rng(seed)
    level = rng.gamma(0.8, rate / 0.8, customers)
    first = np.where(rng.random(customers) < 0.33, rng.integers(0, max(days, 1), customers), 0)
    total = 0
    t0 = time.perf_counter()
    for i in range(days):
        day = START + dt.timedelta(days=i)
        counts = rng.poisson(level * (first <= i))
        ids = np.repeat(np.arange(customers, dtype=np.int64), counts)
        n = len(ids)
        secs = rng.integers(0, 86400, n)
        base = np.datetime64(day.isoformat(), "s")
        is_pay = rng.random(n) < 0.1
        cents = np.where(is_pay, rng.integers(499, 9999, n), 0).astype(np.int64)
        table = pa.table({"customer_id": ids, "ts": (base + secs.astype("timedelta64[s]")).astype("datetime64[us]"),
                          "event_type": np.where(is_pay, "payment", "view"), "cents": cents})
        part = folder / f"date={day.isoformat()}"
        part.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, part / "part-0.parquet")
        total += n
    return {"events": total, "seconds": round(time.perf_counter() - t0, 1), "bytes": _size(folder)}


def _size(path: Path) -> int:
    if Path(path).is_file():
        return Path(path).stat().st_size
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def _files(path: Path) -> int:
    return sum(1 for f in Path(path).rglob("*.parquet"))


# ---- measuring ----------------------------------------------------------------------------------

class PeakMemory:
    """Peak resident memory (MiB) of this process plus its children while the block runs.

    Children, not grandchildren: the Spark JVM starts short-lived helpers (Hadoop's local file system
    runs ``chmod`` for each folder it creates when Hadoop's native library is missing), and a helper
    between its fork and its exec reports the JVM's whole resident size. Counting those summed the
    JVM two or three times over (a 1M x 365 bootstrap read as 20.6 GiB; the JVM itself peaked at 6.7).

    Two measures: all resident pages (``rss``), and the anonymous ones (``rss`` less the file-backed
    and shared pages), which is what the machine cannot give back without swapping. In the runs so far
    they differ by a steady ~140 MiB (the files the processes map: JARs, the JVM's class archive,
    native libraries).
    """

    def __init__(self, interval: float = 0.05, children: bool = True):
        import psutil

        self.proc = psutil.Process()
        self.children = children
        self.interval = interval
        self.peak = self.peak_anon = 0
        self._stop = threading.Event()

    def _rss(self) -> tuple[int, int]:
        total = anon = 0
        for p in (self.proc, *(self.proc.children() if self.children else ())):
            try:
                m = p.memory_info()
            except Exception:  # noqa: BLE001 - a child that just ended
                continue
            total, anon = total + m.rss, anon + m.rss - m.shared
        return total, anon

    def _sample(self) -> None:
        total, anon = self._rss()
        self.peak, self.peak_anon = max(self.peak, total), max(self.peak_anon, anon)

    def _watch(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> "PeakMemory":
        self.start, self.peak_anon = self._rss()
        self.peak = self.start
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()

    @property
    def mib(self) -> int:
        return int(self.peak / 2**20)

    @property
    def anon_mib(self) -> int:
        return int(self.peak_anon / 2**20)

    @property
    def rise_mib(self) -> int:
        return int((self.peak - self.start) / 2**20)


@dataclass
class Step:
    engine: str
    seconds: float
    peak_mib: int
    rise_mib: int
    rows_out: int
    files_written: int
    bytes_written: int
    runs: list[float] | None = None  # every run's seconds when ``seconds`` is their median
    peak_anon_mib: int | None = None  # the peak of anonymous memory (PeakMemory)


# ---- the four routes ----------------------------------------------------------------------------

def _full_sql(source: str, day: dt.date) -> str:
    """As-of-``day`` features over every event on or before ``day`` (DuckDB and Spark SQL alike)."""
    d = f"DATE '{day.isoformat()}'"
    age = f"datediff_days({d}, CAST(ts AS DATE))"
    parts = ["SUM(cents) AS total_spend"]
    for name, (what, n) in WINDOWS.items():
        value = "cents" if what == "cents" else "1"
        parts.append(f"SUM(CASE WHEN {age} < {n} THEN {value} ELSE 0 END) AS {name}")
    parts.append(f"datediff_days({d}, MAX(CAST(ts AS DATE))) AS days_since_last_event")
    return (f"SELECT customer_id, {', '.join(parts)} FROM {source} "
            f"WHERE CAST(ts AS DATE) <= {d} GROUP BY customer_id")


def duckdb_full(events: Path, day: dt.date, out: Path, threads: int) -> pd.DataFrame:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("CREATE MACRO datediff_days(a, b) AS date_diff('day', b, a)")
    sql = _full_sql(f"read_parquet('{events}/*/*.parquet')", day)
    con.execute(f"COPY ({sql}) TO '{out}' (FORMAT parquet)")
    df = con.execute(f"SELECT * FROM read_parquet('{out}')").df()
    con.close()
    return df


def pandas_full(events: Path, day: dt.date, out: Path) -> pd.DataFrame:
    df = pd.read_parquet(events, columns=["customer_id", "ts", "cents"])
    date = df["ts"].dt.floor("D")
    d = pd.Timestamp(day)
    df = df[date <= d]
    age = (d - date[date <= d]).dt.days
    frame = pd.DataFrame({"customer_id": df["customer_id"].to_numpy(), "total_spend": df["cents"].to_numpy()})
    for name, (what, n) in WINDOWS.items():
        inside = (age < n).to_numpy()
        frame[name] = np.where(inside, df["cents"].to_numpy() if what == "cents" else 1, 0)
    frame["last"] = (-age).to_numpy()  # max(-age) = -(days since last event)
    agg = frame.groupby("customer_id", sort=False).agg(
        total_spend=("total_spend", "sum"), **{k: (k, "sum") for k in WINDOWS}, last=("last", "max")).reset_index()
    agg["days_since_last_event"] = -agg.pop("last")
    agg.to_parquet(out, index=False)
    return agg


def _spark_features(spark, events: Path, day: dt.date):
    """The full as-of-``day`` query in Spark SQL (Spark's ``datediff(end, start)`` is the macro)."""
    spark.read.parquet(str(events)).createOrReplaceTempView("bench_events")
    return spark.sql(_full_sql("bench_events", day).replace("datediff_days(", "datediff("))


FULL_SPLIT_BYTES = "1g"
# Spark's generated aggregation code puts groups first into a small fast hash map (2^16 slots by
# default) and the rest into a slower general map. Grouping 91M events by 1M customers, 2^20 slots
# took the full query from 12.1-13.0 s to 7.1-7.4 s (warm session, 2 cores, three runs each);
# 100k customers 0.90 -> 0.79 s, 10k 0.36 -> 0.30 s (no cost at small scale). The pipeline's
# sessions set the same (conf/base/pipeline.yaml); it only acts where Spark generates code.
AGG_MAP_CAPACITY_BIT, AGG_MAP_BITS = "spark.sql.codegen.aggregate.fastHashMap.capacityBit", "20"


def spark_full(spark, events: Path, day: dt.date, out: Path) -> None:
    """The full recompute as one job, its input read in slices of up to ``FULL_SPLIT_BYTES``.

    Spark cuts files into slices of at most ``spark.sql.files.maxPartitionBytes`` (128 MiB by
    default) or the input's bytes per core, whichever is smaller. With the cap at 1 GiB that is about
    one slice per core, so each task's partial aggregation sends one row per customer to the shuffle
    instead of one per 128 MiB slice. On 1M x 365 (91M events, 874 MB), three alternating runs in one
    warm session: 26.1-28.0 s against 30.3-33.2 s with the default (the faster runs also had the
    driver-side listing and 2 shuffle partitions; 512 MiB alone: 27.8-28.5 s). Only this job: the state
    bootstrap groups by customer and day, which big slices barely reduce, and gained nothing from them
    (1M x 365, one run each on the same day: 249 s with 1 GiB slices, 243 s without).
    """
    from lakehouse.spark import session_conf

    with session_conf(spark, {"spark.sql.files.maxPartitionBytes": FULL_SPLIT_BYTES}):
        _spark_features(spark, events, day).write.mode("overwrite").parquet(str(out))


def spark_state(spark, events: Path, day: dt.date, daily_dir: Path, state_dir: Path) -> None:
    """Bootstrap for the incremental route: per-day aggregates up to ``day`` and the state as of ``day``
    (the one full pass an incremental pipeline makes once, when it starts or after a definition change)."""
    from pyspark.sql import functions as F

    ev = spark.read.parquet(str(events)).where(F.to_date("ts") <= F.lit(day.isoformat()).cast("date"))
    daily = ev.groupBy("customer_id", F.to_date("ts").alias("day")).agg(
        F.count(F.lit(1)).alias("n"), F.sum("cents").alias("cents"))
    daily.write.mode("overwrite").partitionBy("day").parquet(str(daily_dir))
    (_spark_features(spark, events, day).withColumn("last_day", F.date_sub(F.lit(day.isoformat()).cast("date"),
                                                      F.col("days_since_last_event")))
     .drop("days_since_last_event").write.mode("overwrite").parquet(str(state_dir)))


def spark_incremental(spark, events: Path, day: dt.date, daily_dir: Path, state_in: Path, out: Path) -> None:
    """Roll the state of ``day - 1`` forward by one day: add ``day``'s aggregates, subtract the days
    leaving each window. Reads one day of events, the state and the day partitions leaving a window
    (D-7, D-30, D-90: one when a day leaves two windows of the same length), each only with the
    customers whose leaving values are not zero.

    One aggregation does the roll: the state's rows, D's row (+) and each leaving day's row (-) are
    stacked and summed per customer, one shuffle whatever the number of windows (it was a full outer
    join and a left join per window before: four shuffles of the state on 1M customers). ``out`` is
    the features *and* tomorrow's state (it keeps ``last_day``): one write of the state, not two.
    """
    from pyspark.sql import functions as F

    d = F.lit(day.isoformat()).cast("date")
    part = daily_dir / f"day={day.isoformat()}"
    (spark.read.parquet(str(events / f"date={day.isoformat()}"))
     .groupBy("customer_id").agg(F.count(F.lit(1)).alias("n"), F.sum("cents").alias("cents"))
     .write.mode("overwrite").parquet(str(part)))  # kept for the days this one leaves a window
    zero = F.lit(0).cast("long")
    sums = ["total_spend", *WINDOWS]

    def contribution(frame, values: dict, last_day):
        return frame.select("customer_id", *[(values.get(c, zero)).cast("long").alias(c) for c in sums],
                            last_day.alias("last_day"))

    stacked = spark.read.parquet(str(state_in)).select("customer_id", *sums, "last_day")
    today = spark.read.parquet(str(part))
    stacked = stacked.unionByName(contribution(
        today, {"total_spend": F.col("cents"), **{w: F.col(what) for w, (what, _) in WINDOWS.items()}}, d))
    for n in sorted({n for _, n in WINDOWS.values()}):
        gone = daily_dir / f"day={(day - dt.timedelta(days=n)).isoformat()}"
        if gone.exists():
            leaving = {w: what for w, (what, k) in WINDOWS.items() if k == n}
            # only the rows that change a window: a day leaving only the spend windows brings the
            # customers who paid that day, not every customer who was active (the others add zeros)
            changes = reduce(operator.or_, [F.col(what) != 0 for what in sorted(set(leaving.values()))])
            stacked = stacked.unionByName(contribution(
                spark.read.parquet(str(gone)).where(changes), {w: -F.col(what) for w, what in leaving.items()},
                F.lit(None).cast("date")))
    (stacked.groupBy("customer_id").agg(*[F.sum(c).alias(c) for c in sums], F.max("last_day").alias("last_day"))
     .withColumn("days_since_last_event", F.datediff(d, "last_day"))
     .write.mode("overwrite").parquet(str(out)))


# ---- the run ------------------------------------------------------------------------------------

def _load(out: Path) -> pd.DataFrame:
    df = pd.read_parquet(out)[FEATURES]
    return df.astype({c: "int64" for c in FEATURES}).sort_values("customer_id").reset_index(drop=True)


def _check_equal(expected: pd.DataFrame, got: pd.DataFrame, engine: str) -> None:
    if len(expected) != len(got):
        raise AssertionError(f"{engine}: {len(got)} customers, DuckDB has {len(expected)}")
    for col in FEATURES:
        bad = expected[col].to_numpy() != got[col].to_numpy()
        if bad.any():
            i = int(np.argmax(bad))
            raise AssertionError(f"{engine}: {int(bad.sum())} customers differ from DuckDB in {col}, e.g. customer "
                                 f"{expected['customer_id'][i]}: {got[col][i]} vs {expected[col][i]}")


def _timed(engine: str, fn, out: Path, repeats: int = 1) -> Step:
    """Run ``fn`` ``repeats`` times (it must be idempotent); seconds is the median, memory the highest peak."""
    runs, peak, rise, anon = [], 0, 0, 0
    for _ in range(repeats):
        with PeakMemory() as mem:
            t = time.perf_counter()
            fn()
            runs.append(round(time.perf_counter() - t, 2))
        peak, rise, anon = max(peak, mem.mib), max(rise, mem.rise_mib), max(anon, mem.anon_mib)
    rows = pq.ParquetFile(out).metadata.num_rows if out.is_file() else sum(
        pq.ParquetFile(f).metadata.num_rows for f in out.rglob("*.parquet"))
    return Step(engine, sorted(runs)[len(runs) // 2], peak, rise, rows, _files(out) if out.is_dir() else 1,
                _size(out), runs if repeats > 1 else None, anon)


# The incremental day is a second or two at every scale here, where one run's noise is tens of percent
# (2 cores): it is run this many times (it is idempotent) and its median reported
INCREMENTAL_REPEATS = 3
# ... and, across history lengths, in this many paired rounds once every history of a customer count
# is built: each round runs the day on every history back to back (order alternating between rounds),
# so a slow minute of the machine hits both sides of a ratio, not one
INTERLEAVED_ROUNDS = 5


def bench_features(customers: list[int], histories: list[int], out_json: Path, out_md: Path,
                   spark_memory: str = "6g", work: Path | None = None, spark=None) -> list[dict]:
    """Run every route at each scale; ``spark``: a session to use (and leave running) instead of a new one."""
    from pyspark.sql import SparkSession

    threads = os.cpu_count() or 2
    base = Path(work or tempfile.mkdtemp(prefix="churn-bench-features-"))
    own = spark is None
    spark = spark or (
        SparkSession.builder.master(f"local[{threads}]").appName("bench-features")
        .config("spark.driver.memory", spark_memory).config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        # the day folders (365) are listed by the driver, not by a Spark job of one task each
        .config("spark.sql.sources.parallelPartitionDiscovery.threshold", "1000")
        .config("spark.sql.shuffle.partitions", str(max(threads * 2, 4)))
        .config("spark.sql.session.timeZone", "UTC").config("spark.sql.adaptive.enabled", "true")
        .config(AGG_MAP_CAPACITY_BIT, AGG_MAP_BITS)
        .getOrCreate())
    if own:
        spark.sparkContext.setLogLevel("ERROR")
    results = []
    try:
        spark.range(1000).selectExpr("id % 7 AS k").groupBy("k").count().collect()  # warm the JVM
        for n in customers:
            built: dict[int, Built] = {}
            for days in histories:
                root = base / f"c{n}-d{days}"
                shutil.rmtree(root, ignore_errors=True)
                log.info("bench features: generating %d customers x %d days", n, days)
                gen = generate_events(root / "events", n, days)
                day = START + dt.timedelta(days=days - 1)
                row = {"customers": n, "days": days, "events": gen["events"], "events_bytes": gen["bytes"],
                       "generation_s": gen["seconds"], "as_of": day.isoformat(), "steps": []}
                out = root / "out"
                out.mkdir()
                # (bound now: the paired rounds call it after this loop has moved on)
                incremental = partial(spark_incremental, spark, root / "events", day, root / "daily",
                                      root / "state_prev", out / "spark_incremental")
                # pandas last: at 1M x 365 it takes ~16 GiB, which pushes the event files out of the page
                # cache; the engines before it all read them warm (DuckDB right after they were written)
                steps = [
                    ("duckdb (full)", lambda: duckdb_full(root / "events", day, out / "duckdb.parquet", threads),
                     out / "duckdb.parquet", 1),
                    ("spark (full)", lambda: spark_full(spark, root / "events", day, out / "spark_full"),
                     out / "spark_full", 1),
                    ("spark state bootstrap (once, as of D-1)",
                     lambda: spark_state(spark, root / "events", day - dt.timedelta(days=1), root / "daily",
                                         root / "state_prev"), root / "state_prev", 1),
                    ("spark (incremental day D)", incremental, out / "spark_incremental", INCREMENTAL_REPEATS),
                    ("pandas (full)", lambda: pandas_full(root / "events", day, out / "pandas.parquet"),
                     out / "pandas.parquet", 1),
                ]
                for engine, fn, target, repeats in steps:
                    if engine.startswith("pandas") and gen["events"] > 400_000_000:
                        continue  # would not fit in memory here
                    step = _timed(engine, fn, target, repeats)
                    row["steps"].append(step.__dict__)
                    log.info("bench features %d x %d: %s %.2fs, peak %d MiB", n, days, engine, step.seconds,
                             step.peak_mib)
                expected = _load(out / "duckdb.parquet")
                for name, path in (("pandas (full)", out / "pandas.parquet"), ("spark (full)", out / "spark_full"),
                                   ("spark (incremental day D)", out / "spark_incremental")):
                    if path.exists():
                        _check_equal(expected, _load(path), name)
                row["checked_equal"] = True
                results.append(row)
                built[days] = Built(row, incremental, out)
                _write_results(results, threads, out_json, out_md)  # kept current after every scale
            if len(built) > 1:
                _interleaved(n, built)
                _write_results(results, threads, out_json, out_md)
            for days in built:
                shutil.rmtree(base / f"c{n}-d{days}", ignore_errors=True)
    finally:
        if own:
            spark.stop()
        if work is None:
            shutil.rmtree(base, ignore_errors=True)
    return results


def _write_results(results: list[dict], threads: int, out_json: Path, out_md: Path) -> None:
    out_json.parent.mkdir(parents=True, exist_ok=True)
    out_json.write_text(json.dumps({"machine": machine(), "threads": threads, "results": results}, indent=2))
    out_md.write_text(render_markdown(results, threads, out_md))


class Built(NamedTuple):
    """One history of a customer count, kept for the paired rounds."""
    row: dict                       # its results row (gets ``interleaved_s``)
    incremental: Callable[[], None]  # its incremental day, bound to its folders
    out: Path                       # its outputs (DuckDB's, the incremental day's)


def _interleaved(n: int, built: dict[int, Built]) -> None:
    """The incremental day on every history of ``n`` customers, in paired rounds (``INTERLEAVED_ROUNDS``);
    each history's row gets ``interleaved_s``, one time per round. Each history's output is removed
    first and checked equal to DuckDB's again after the rounds."""
    order = sorted(built)
    for days in order:
        shutil.rmtree(built[days].out / "spark_incremental")
    for rnd in range(INTERLEAVED_ROUNDS):
        for days in (order if rnd % 2 == 0 else order[::-1]):
            t = time.perf_counter()
            built[days].incremental()
            built[days].row.setdefault("interleaved_s", []).append(round(time.perf_counter() - t, 3))
    for days in order:
        out = built[days].out
        _check_equal(_load(out / "duckdb.parquet"), _load(out / "spark_incremental"),
                     f"spark (incremental day D, {days} days, paired rounds)")
    log.info("bench features %d: incremental day, paired rounds: %s", n,
             {d: built[d].row["interleaved_s"] for d in order})


def render_markdown(results: list[dict], threads: int, out_md: Path) -> str:
    lines = ["# Feature-build benchmark", "",
             f"Machine: {machine()}. Measured by `lakehouse bench features` (`make bench`); one run of each "
             f"route but the incremental day (the median of {INCREMENTAL_REPEATS} runs), so treat "
             "differences under ~10 % as noise. DuckDB runs with "
             f"{threads} threads, Spark on `local[{threads}]` in a warm session (its JVM start-up, ~10-15 s, "
             "is not in any cell), pandas single-threaded.",
             "",
             "Features per customer as of the last day D: total spend, spend in 30 and 90 days, events in 7 "
             "and 30 days, days since the last event (the shape of the pipeline's gold windows). Every route's "
             "output is checked equal to DuckDB's, every customer and column. *Incremental* is one daily update: "
             "D's events + yesterday's state + the day aggregates leaving the windows; *bootstrap* is the one-off "
             "full pass that builds that state.", "",
             "Memory: *peak* is the resident memory of the whole process tree (Python + the Spark JVM, which stays up "
             "through every step, so DuckDB's and pandas' rows include the idle JVM); *rise* is how far the peak "
             "went above the tree's memory at the step's start; *anonymous* is the peak of the tree's "
             "resident memory less its file-backed and shared pages (the part the kernel cannot give back "
             "without swapping; here ~140 MiB under *peak*: the mapped JARs, class archive and libraries).", "",
             "| customers | days | events | route | seconds | M events/s | peak MiB | rise MiB | anonymous MiB | "
             "rows out | files | MiB written |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        for s in r["steps"]:
            rate = r["events"] / s["seconds"] / 1e6 if s["seconds"] else 0
            lines.append(f"| {r['customers']:,} | {r['days']} | {r['events']:,} | {s['engine']} | {s['seconds']:.2f} | "
                         f"{rate:.1f} | {s['peak_mib']:,} | {s['rise_mib']:,} | {s.get('peak_anon_mib') or 0:,} | "
                         f"{s['rows_out']:,} | {s['files_written']} | "
                         f"{s['bytes_written'] / 2**20:.1f} |")
    lines += ["", "## Ratios", "", "| customers | days | spark full / duckdb | spark incremental / duckdb full | "
              "pandas / spark full | incremental / full (spark) |", "| --- | --- | --- | --- | --- | --- |"]
    for r in results:
        s = {x["engine"]: x["seconds"] for x in r["steps"]}
        duck, full, inc = s.get("duckdb (full)"), s.get("spark (full)"), s.get("spark (incremental day D)")
        pandas_s = s.get("pandas (full)")
        lines.append(f"| {r['customers']:,} | {r['days']} | {full / duck:.2f}x | {inc / duck:.2f}x | "
                     f"{(pandas_s / full) if pandas_s else float('nan'):.2f}x | {inc / full:.2f}x |")
    by_n: dict[int, dict[int, tuple[float, int, list[float]]]] = {}
    for r in results:
        inc = next(x for x in r["steps"] if x["engine"].startswith("spark (incremental"))
        by_n.setdefault(r["customers"], {})[r["days"]] = (inc["seconds"], inc["rows_out"], r.get("interleaved_s") or [])
    spans = [(n, d) for n, d in by_n.items() if len(d) > 1]
    if spans:
        lines += ["", "Incremental daily update against history length. The customers seen grow with history "
                  "(every one of them has a state row and an output row), so the cost per output row is given "
                  "too. *Paired* runs the day on every history back to back, round after round, once all are "
                  f"built ({INTERLEAVED_ROUNDS} rounds, the order alternating), and takes the median of each "
                  "round's ratio: the machine's slow and fast minutes then fall on both sides of a ratio.", "",
                  "| customers | " + " | ".join(f"{d} days" for d in sorted(spans[0][1]))
                  + " | longest / shortest | per output row | paired rounds, seconds | paired: longest / shortest "
                  "(median) | paired, per output row |", "| --- " * (len(spans[0][1]) + 6) + "|"]
        for n, d in spans:
            ks = sorted(d)
            (t0, n0, p0), (t1, n1, p1) = d[ks[0]], d[ks[-1]]
            ratios = sorted(b / a for a, b in zip(p0, p1) if a)
            paired = ratios[len(ratios) // 2] if ratios else float("nan")
            rounds = "; ".join(f"{k} d: " + ", ".join(f"{x:.2f}" for x in d[k][2]) for k in ks) if p0 else "-"
            lines.append(f"| {n:,} | " + " | ".join(f"{d[k][0]:.2f} s ({d[k][1]:,} rows)" for k in ks)
                         + f" | {t1 / t0:.2f}x | {(t1 / n1) / (t0 / n0):.2f}x | {rounds} | {paired:.2f}x | "
                         f"{paired * n0 / n1:.2f}x |")
    plot = _plot(results, out_md.with_suffix(".png"))
    if plot:
        lines += ["", f"![feature build time by route]({plot.name})"]
    return "\n".join(lines) + "\n"


def _plot(results: list[dict], path: Path) -> Path | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not results:
        return None
    fig, ax = plt.subplots(figsize=(8, 4))
    engines = [s["engine"] for s in results[0]["steps"] if "bootstrap" not in s["engine"]]
    labels = [f"{r['customers'] // 1000}k x {r['days']}d" for r in results]
    width = 0.8 / len(engines)
    for i, engine in enumerate(engines):
        vals = [next((s["seconds"] for s in r["steps"] if s["engine"] == engine), np.nan) for r in results]
        ax.bar(np.arange(len(results)) + i * width, vals, width, label=engine)
    ax.set_xticks(np.arange(len(results)) + width * (len(engines) - 1) / 2, labels)
    ax.set_yscale("log")
    ax.set_ylabel("seconds (log)")
    ax.set_title("As-of-date feature build, by route")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
