"""Run a dataset profile on a file, end to end: raw zone, bronze, Deequ checks, silver, gold
features, training of every algorithm with MLflow tracking, and a model report.

The same machinery as the simulated business runs it: the profile is compiled into quality rules
(``TableRules``) and checked by ``lakehouse.silver.stage.validate_table`` (Deequ constraints,
quarantine with reasons, duplicates removed, reconciliation asserted), and the models are fitted
and compared by ``lakehouse.ml.train.fit_algorithms``. Tables:

- ``raw/byod/<name>/<shape>/date=D/<file>``: the file's exact bytes and a manifest;
- ``bronze/byod_<name>``: every line as text with file and line number, partition ``_ingest_date``;
- ``silver/byod_<name>``: typed, deduplicated, personal data hashed; ``silver/quarantine_byod``;
- ``gold/byod_<name>_features``: one row per customer (and cutoff, for event logs) with the label.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from lakehouse import delta_io, tables
from lakehouse.byod.profile import LINE_ID, ROW_ID, Profile, ProfileError, check_header, normalize, read_header
from lakehouse.config import Settings, secret
from lakehouse.errors import LakehouseError
from lakehouse.quality.rules import ColumnSpec, DatasetRule, Rule, TableRules
from lakehouse.run_ids import new_run_id
from lakehouse.storage import storage_for

log = logging.getLogger(__name__)
EVENT_FEATURES = ["recency_days", "tenure_days", "frequency", "frequency_30d", "frequency_90d", "active_days",
                  "orders_per_30d", "monetary_total", "monetary_90d", "avg_order_value"]


@dataclass
class ByodResult:
    profile: str
    shape: str
    run_date: str
    run_id: str
    file: str
    sha256: str
    rows: dict[str, int]
    findings: list[dict]
    suggestions: list[dict]
    split: dict
    metrics: dict[str, dict]
    best: str
    registered: str
    mlflow_run_id: str
    out_dir: str
    table_versions: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


# ---- profile -> quality rules -------------------------------------------------------------------
def table_rules(profile: Profile) -> TableRules:
    cid = profile.id_column
    cols: dict[str, ColumnSpec] = {cid: ColumnSpec(type="string", standardize="trim")}
    rules = [Rule(name="customer_id_complete", check="complete", column=cid, severity="error", resolution="quarantine")]
    number = "decimal_comma" if profile.source.decimal_comma else "trim"
    for c in profile.numeric_columns:
        cols[c] = ColumnSpec(type="double", standardize=number)
    for c in profile.categorical_columns:
        cols[c] = ColumnSpec(type="string", standardize="trim")
    for c in profile.pii:
        cols[normalize(c)] = ColumnSpec(type="string", standardize="trim", pii=True)
    if profile.shape == "snapshot":
        lab = normalize(profile.label.column)
        cols[lab] = ColumnSpec(type="string", standardize="lower")
        allowed = sorted({v.strip().lower() for v in profile.label.churned + profile.label.retained})
        rules += [Rule(name="label_complete", check="complete", column=lab, severity="error", resolution="quarantine"),
                  Rule(name="label_known", check="allowed", column=lab, values=allowed, severity="error",
                       resolution="quarantine")]
        key = [cid]
    else:
        ev = profile.events
        ts = normalize(ev.timestamp.column)
        cols[ts] = ColumnSpec(type="timestamp", standardize="trim", formats=ev.timestamp.formats)
        if ev.order_id:
            cols[normalize(ev.order_id)] = ColumnSpec(type="string", standardize="trim")
        if ev.amount and "amount" in profile.roles():
            cols[normalize(ev.amount)] = ColumnSpec(type="double", standardize=number)
        rules.append(Rule(name="timestamp_complete", check="complete", column=ts, severity="error",
                          resolution="quarantine"))
        if ev.keep_identical_lines:  # the line number tells identical lines apart
            cols[LINE_ID] = ColumnSpec(type="string")
        key = list(cols)  # events: only exact duplicates are dropped
    for r in profile.checks:
        rules.append(r.model_copy(update={"column": normalize(r.column)}))
    try:
        return TableRules(table=profile.table, source="byod", bronze=profile.table, key=key, order_by=cid,
                          write_mode="upsert", columns=cols, rules=rules, dataset_rules=[
                              DatasetRule(name="key_unique", check="unique", value=0.2, severity="warning"),
                              DatasetRule(name="quarantine_rate", check="max_quarantine_rate",
                                          value=profile.max_quarantine_rate, severity="error")])
    except ValueError as exc:  # pydantic: a check names an undeclared column, ...
        raise ProfileError(f"profile '{profile.name}': {exc}") from None


# ---- reading ------------------------------------------------------------------------------------
def refuse_changed_columns(spark: SparkSession, settings: Settings, profile: Profile, header: list[str],
                           file: Path, replace: bool = False) -> None:
    """Before anything is written: a file whose columns differ from those the profile's bronze table
    already holds is refused in one line (the layers would otherwise hold different runs' columns);
    with ``replace`` the profile's tables are dropped instead, so this run writes every layer anew."""
    uri = tables.bronze(profile.table).uri(settings)
    if not delta_io.is_delta(spark, uri):
        return
    stored = [c for c in delta_io.read(spark, uri).columns if not c.startswith("_")  # _* is run metadata
              and c not in _derived_columns(profile)]
    added, removed = sorted(set(header) - set(stored)), sorted(set(stored) - set(header))
    if not added and not removed:
        return
    change = "; ".join(part for part in (f"added {added}" if added else "", f"removed {removed}" if removed else "")
                       if part)
    if not replace:
        raise LakehouseError(
            f"{file}: its columns differ from those profile '{profile.name}' loaded before (bronze.{profile.table}): "
            + change + ". Nothing was written. Run it under a new profile name (its own tables), or add --replace "
              "to drop the profile's bronze, silver and gold tables and load this file into all of them")
    drop_profile_tables(spark, settings, profile)
    log.warning("profile %s: columns changed (%s); its tables were dropped and this run writes every layer anew",
                profile.name, change)


def _derived_columns(profile: Profile) -> set[str]:
    """Columns the run adds to bronze (not in the file)."""
    keep = profile.shape == "event_log" and profile.events.keep_identical_lines
    return ({ROW_ID} if not profile.customer_id else set()) | ({LINE_ID} if keep else set())


def drop_profile_tables(spark: SparkSession, settings: Settings, profile: Profile) -> None:
    """Delete the profile's bronze, silver and gold tables and its rows of the shared BYOD quarantine."""
    from lakehouse.storage import storage_for

    storage = storage_for(settings)
    for table in (tables.bronze(profile.table), tables.byod_silver(profile.table), tables.byod_features(profile.table)):
        storage.delete(table.rel)
    quarantine = tables.quarantine("byod").uri(settings)
    if delta_io.is_delta(spark, quarantine):
        spark.sql(f"DELETE FROM delta.`{quarantine}` WHERE table = '{profile.table}'")


def land_raw(settings: Settings, profile: Profile, file: Path, run_date: dt.date, run_id: str,
             kind: str | None = None) -> tuple[str, str, str]:
    """Copy the file's bytes into the raw zone (``raw/byod/<profile>/<kind: the shape, or score>/date=D``);
    returns (sha256, folder URI to parse, file name).

    Files in another encoding (or with a byte-order mark) are also written re-encoded as UTF-8 to
    ``staging/``, which is what Spark parses; the raw copy stays byte-exact.
    """
    data = file.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    storage = storage_for(settings)
    kind = kind or profile.shape
    rel = f"raw/byod/{profile.name}/{kind}/date={run_date.isoformat()}"
    manifest = {"profile": profile.name, "file": file.name, "source_path": str(file.resolve()), "bytes": len(data),
                "sha256": sha, "run_date": run_date.isoformat(), "run_id": run_id, "encoding": profile.source.encoding}
    storage.replace_dir(rel, {file.name: data, "_manifest.json": json.dumps(manifest, indent=2).encode()}, run_id)
    enc = profile.source.encoding.lower().replace("_", "-")
    if enc in ("utf-8", "utf8", "ascii", "us-ascii") and not data.startswith(b"\xef\xbb\xbf"):
        return sha, storage.join(rel), file.name
    text = data.decode("utf-8-sig" if enc in ("utf-8", "utf8") else profile.source.encoding, errors="replace")
    staging = f"staging/byod/{profile.name}/{kind}/date={run_date.isoformat()}"
    storage.replace_dir(staging, {file.name: text.encode("utf-8")}, run_id)
    log.info("%s: decoded from %s and staged as UTF-8 for parsing", file.name, profile.source.encoding)
    return sha, storage.join(staging), file.name


def parse_file(spark: SparkSession, profile: Profile, folder: str, name: str, header: list[str], run_date: dt.date,
               run_id: str):
    """The landed file's rows as the profile reads them, with the columns the run derives (a row id for
    a file without one, line numbers for an event log that keeps identical lines) and the run's stamp.
    Returns (rows, cached parsed lines to unpersist once written, lines, unparseable lines)."""
    from lakehouse.ingest.bronze import parse_raw

    src = profile.source
    fmt = "whitespace" if src.format == "whitespace" else "csv"
    df, _, _, n_rows, n_bad, cached = parse_raw(spark, folder, [name], fmt, header, {name: header},
                                                delimiter=src.delimiter, has_header=src.header)
    if not profile.customer_id:  # no id column: each row's id from its values (identical lines share it)
        values = F.concat_ws("\u0001", *[F.coalesce(F.col(f"`{c}`").cast("string"), F.lit("\u0000")) for c in header])
        df = df.withColumn(ROW_ID, F.concat(F.lit("r"), F.substring(F.sha2(values, 256), 1, 16)))
    if profile.shape == "event_log" and profile.events.keep_identical_lines:
        df = df.withColumn(LINE_ID, F.col("_line").cast("string"))
    stamped = df.withColumn("_ingest_date", F.lit(run_date.isoformat()).cast("date")).withColumn("_run_id", F.lit(run_id))
    return stamped, cached, n_rows, n_bad


def load_bronze(spark: SparkSession, settings: Settings, profile: Profile, folder: str, name: str,
                header: list[str], run_date: dt.date, run_id: str) -> DataFrame:
    stamped, cached, n_rows, n_bad = parse_file(spark, profile, folder, name, header, run_date, run_id)
    bronze = tables.bronze(profile.table)
    uri = bronze.uri(settings)
    delta_io.replace_partition(stamped, uri, bronze.partition, run_date.isoformat(),
                               delta_io.commit_metadata(run_id, "byod", run_date.isoformat(), profile=profile.name))
    cached.unpersist()
    log.info("bronze.%s %s: %d lines parsed, %d unparseable", profile.table, run_date, n_rows, n_bad)
    return delta_io.read(spark, uri).where(F.col("_ingest_date") == F.lit(run_date.isoformat()).cast("date"))


def check_label_values(bronze: DataFrame, profile: Profile, file_label: str) -> None:
    """A label value the profile does not declare is a profile mistake: fail, naming the values."""
    col = normalize(profile.label.column)
    declared = {v.strip().lower() for v in profile.label.churned + profile.label.retained}
    found = (bronze.where(F.col("_parse_error").isNull())
             .groupBy(F.lower(F.trim(F.col(col))).alias("v")).count().collect())
    unexpected = sorted(((r["v"], r["count"]) for r in found if r["v"] not in (None, "") and r["v"] not in declared),
                        key=lambda kv: -kv[1])
    if unexpected:
        shown = ", ".join(f"{v!r} ({n} rows)" for v, n in unexpected[:10])
        raise ProfileError(f"{file_label}: label column {profile.label.column!r} has values the profile does not "
                           f"declare: {shown}. Declared churned: {profile.label.churned}, retained: "
                           f"{profile.label.retained} (compared trimmed and case-insensitively)")


# ---- quality findings ---------------------------------------------------------------------------
def _mixed_case(rows: DataFrame, column: str) -> tuple[int, list[str]] | None:
    """Rows whose spelling of a value differs from that value's most common spelling (``Yes`` beside
    ``yes``), with examples; None when every value has one spelling (``Yes`` on every row is no problem)."""
    raw = F.trim(F.col(f"`_raw_{column}`"))
    spellings: dict[str, list[tuple[int, str]]] = {}
    for r in rows.where(raw != "").groupBy(F.lower(raw).alias("v"), raw.alias("s")).count().collect():
        spellings.setdefault(r["v"], []).append((r["count"], r["s"]))
    odd = [sorted(v, reverse=True) for v in spellings.values() if len(v) > 1]
    if not odd:
        return None
    return sum(n for v in odd for n, _ in v[1:]), [s for v in odd for _, s in v][:6]


def findings(annotated: DataFrame, spec: TableRules, profile: Profile, outcome, undeclared: list[str]) -> list[dict]:
    """Every problem the quality stage found, as (column, rows, problem, what was done)."""
    numeric = set(profile.numeric_columns) | ({normalize(profile.events.amount)} if profile.shape == "event_log"
                                              and "amount" in profile.roles() else set())
    aggs = []
    for c, cs in spec.columns.items():
        raw = F.col(f"`_raw_{c}`")
        aggs += [F.sum((raw.isNotNull() & (F.trim(raw) == "")).cast("long")).alias(f"{c}__blank"),
                 F.sum(raw.isNull().cast("long")).alias(f"{c}__empty"),
                 F.sum((F.trim(raw) != raw).cast("long") * (F.trim(raw) != "").cast("long")).alias(f"{c}__pad")]
        if cs.standardize == "decimal_comma":
            aggs.append(F.sum(raw.contains(",").cast("long")).alias(f"{c}__comma"))
    ok = annotated.where(F.col("_parse_error").isNull())
    row = ok.agg(*aggs).first()
    out = []
    for c, cs in spec.columns.items():
        if c in numeric:
            done = "set to null; imputed with the training median in the model pipeline"
        elif cs.pii:
            done = "set to null (hashed column stays null)"
        elif cs.type == "string":
            done = "set to null; encoded as its own category '__missing__'"
        else:
            done = "set to null"
        blank, empty = int(row[f"{c}__blank"] or 0), int(row[f"{c}__empty"] or 0)
        if blank:
            out.append({"column": c, "rows": blank, "problem": "text of blanks only", "action": done})
        if empty:
            out.append({"column": c, "rows": empty, "problem": "empty field", "action": done})
        if int(row[f"{c}__pad"] or 0):
            out.append({"column": c, "rows": int(row[f"{c}__pad"]), "problem": "leading/trailing blanks",
                        "action": "trimmed"})
        if f"{c}__comma" in row.asDict() and int(row[f"{c}__comma"] or 0):
            out.append({"column": c, "rows": int(row[f"{c}__comma"]), "problem": "decimal comma",
                        "action": "read as a decimal point (source.decimal_comma)"})
        if cs.standardize == "lower":
            mixed = _mixed_case(ok, c)
            if mixed:
                out.append({"column": c, "rows": mixed[0], "problem": f"one value written in several letter cases "
                            f"({', '.join(repr(x) for x in mixed[1])})", "action": "read case-insensitively"})
    for r in outcome.rule_rows:
        if r["failing_rows"] and r["kind"] == "row":
            column = r["rule"][:-5] if r["rule"].endswith("_type") else next(
                (x.column for x in spec.rules if x.name == r["rule"]), "")
            problem = "not a number" if r["rule"].endswith("_type") else f"rule {r['rule']} ({r['threshold']})"
            if r["rule"] == "parseable":
                problem = "line could not be parsed (field count, quoting or encoding)"
            if r["rule"].endswith("_type"):
                samples = [x[0] for x in ok.where(F.col(f"`_raw_{column}`").isNotNull() & F.col(f"`{column}`").isNull())
                           .groupBy(f"`_raw_{column}`").count().orderBy(F.desc("count")).limit(3).collect()]
                problem += f", e.g. {samples}"
            action = {"quarantine": "row quarantined (kept in silver/quarantine_byod with the reason)",
                      "keep": "row kept, flagged"}.get(r["resolution"], r["resolution"])
            out.append({"column": column, "rows": int(r["failing_rows"]), "problem": problem, "action": action})
    if outcome.duplicates_removed:
        out.append({"column": "(all)", "rows": outcome.duplicates_removed, "problem": "exact duplicate rows",
                    "action": "removed before any split"})
    if outcome.superseded:
        out.append({"column": profile.id_column, "rows": outcome.superseded,
                    "problem": "customer id repeated with different values", "action": "kept the last line"})
    if undeclared:
        out.append({"column": ", ".join(undeclared), "rows": 0, "problem": "columns not in the profile",
                    "action": "ignored (declare them, or list them under drop)"})
    return out


def suggestions(spark: SparkSession, silver: DataFrame, limit: int = 25) -> list[dict]:
    """Deequ's constraint suggestions on the typed rows: a start for the profile's own ``checks``."""
    from lakehouse.quality.runtime import import_pydeequ

    import_pydeequ()
    from pydeequ.suggestions import DEFAULT, ConstraintSuggestionRunner

    cols = [c for c in silver.columns if not c.startswith("_")]
    res = ConstraintSuggestionRunner(spark).onData(silver.select(*cols)).addConstraintRule(DEFAULT()).run()
    return [{"column": s["column_name"], "suggestion": s["description"], "deequ": s["code_for_constraint"]}
            for s in res.get("constraint_suggestions", [])[:limit]]


# ---- gold ---------------------------------------------------------------------------------------
def snapshot_features(silver: DataFrame, profile: Profile, run_date: dt.date) -> DataFrame:
    cid, lab = profile.id_column, normalize(profile.label.column)
    churned = [v.strip().lower() for v in profile.label.churned]
    return silver.select(F.col(cid).alias("customer_id"), F.lit(run_date).alias("as_of"),
                         *[F.col(c) for c in profile.numeric_columns + profile.categorical_columns],
                         F.col(lab).isin(churned).cast("int").alias("label"))


def event_cutoffs(events: DataFrame, profile: Profile) -> list[dt.date]:
    ev = profile.events
    span = events.agg(F.min(F.to_date("ts")).alias("lo"), F.max(F.to_date("ts")).alias("hi")).first()
    if span["hi"] is None:
        raise LakehouseError(f"profile '{profile.name}': no events left after the quality checks")
    lo, hi = span["lo"], span["hi"]
    if ev.cutoffs.dates:
        dates = sorted(ev.cutoffs.dates)
    else:
        last = hi - dt.timedelta(days=ev.horizon_days - 1)
        dates = [last - dt.timedelta(days=ev.cutoffs.every_days * k) for k in reversed(range(ev.cutoffs.count))]
    late = [d for d in dates if d + dt.timedelta(days=ev.horizon_days - 1) > hi]
    early = [d for d in dates if d <= lo]
    if late or early:
        raise ProfileError(f"profile '{profile.name}': events run from {lo} to {hi}; cutoffs "
                           f"{[str(d) for d in late]} leave less than horizon_days={ev.horizon_days} after them and "
                           f"{[str(d) for d in early]} have no history before them. Use fewer/earlier cutoffs, a "
                           f"shorter horizon, or explicit events.cutoffs.dates")
    return dates


def event_features(events: DataFrame, profile: Profile, cutoffs: list[dt.date]) -> DataFrame:
    """Per customer and cutoff c: RFM and tenure from events before c only (point in time), label =
    no event in [c, c + horizon). Customers count at c if active within ``active_within_days``."""
    ev = profile.events
    spark = events.sparkSession
    cuts = spark.createDataFrame([(c,) for c in cutoffs], "as_of date")
    day = F.to_date("ts")
    e = events.crossJoin(F.broadcast(cuts)).where(day < F.date_add("as_of", ev.horizon_days))
    before = day < F.col("as_of")
    age = F.datediff("as_of", day)
    order = F.col("order_key")

    def when_before(cond, value):
        return F.when(before & cond, value)

    agg = e.groupBy("customer_id", "as_of").agg(
        F.max(when_before(F.lit(True), day)).alias("_last"), F.min(when_before(F.lit(True), day)).alias("_first"),
        F.countDistinct(when_before(F.lit(True), order)).alias("frequency"),
        F.countDistinct(when_before(age <= 30, order)).alias("frequency_30d"),
        F.countDistinct(when_before(age <= 90, order)).alias("frequency_90d"),
        F.countDistinct(when_before(F.lit(True), day)).alias("active_days"),
        F.sum(when_before(F.lit(True), F.col("amount"))).alias("monetary_total"),
        F.sum(when_before(age <= 90, F.col("amount"))).alias("monetary_90d"),
        F.count(F.when(~before, F.lit(1))).alias("_after"),
        *[F.max_by(when_before(F.lit(True), F.col(c)), when_before(F.lit(True), F.col("ts"))).alias(c)
          for c in profile.categorical_columns])
    tenure = F.datediff("as_of", "_first")
    return (agg.where(F.col("_last").isNotNull() & (F.datediff("as_of", "_last") <= ev.active_within_days))
            .select("customer_id", "as_of",
                    F.datediff("as_of", "_last").cast("double").alias("recency_days"),
                    tenure.cast("double").alias("tenure_days"),
                    *[F.col(c).cast("double").alias(c) for c in ["frequency", "frequency_30d", "frequency_90d",
                                                                 "active_days"]],
                    (F.col("frequency") * 30.0 / F.greatest(tenure, F.lit(30))).alias("orders_per_30d"),
                    F.coalesce("monetary_total", F.lit(0.0)).alias("monetary_total"),
                    F.coalesce("monetary_90d", F.lit(0.0)).alias("monetary_90d"),
                    (F.coalesce("monetary_total", F.lit(0.0)) / F.col("frequency")).alias("avg_order_value"),
                    *profile.categorical_columns,
                    (F.col("_after") == 0).cast("int").alias("label")))


def events_frame(silver: DataFrame, profile: Profile) -> DataFrame:
    ev = profile.events
    amount = F.expr(ev.amount) if ev.amount else F.lit(None).cast("double")
    order = F.col(normalize(ev.order_id)) if ev.order_id else F.concat_ws("|", F.col("ts").cast("string"),
                                                                         F.monotonically_increasing_id())
    return silver.select(F.col(profile.id_column).alias("customer_id"),
                         F.col(normalize(ev.timestamp.column)).alias("ts"), amount.cast("double").alias("amount"),
                         order.alias("order_key"), *profile.categorical_columns)


# ---- split --------------------------------------------------------------------------------------
def split(features: DataFrame, profile: Profile) -> tuple[DataFrame, DataFrame, dict]:
    ev = profile.evaluation
    if ev.method == "out_of_time":
        from lakehouse.ml.train import split_dates

        dates = sorted(r[0] for r in features.select("as_of").distinct().collect())
        train_dates, eval_dates = split_dates(dates, ev.test_fraction)
        test = F.col("as_of") >= F.lit(eval_dates[0])
        info = {"method": "out_of_time", "train_dates": [str(d) for d in train_dates],
                "eval_dates": [str(d) for d in eval_dates]}
    elif profile.shape == "snapshot":  # exactly stratified by label; one row per customer
        h = F.xxhash64("customer_id", F.lit(ev.seed))
        ranked = features.withColumn("_rank", F.row_number().over(Window.partitionBy("label").orderBy(h))) \
            .withColumn("_n", F.count(F.lit(1)).over(Window.partitionBy("label")))
        features = ranked
        test = F.col("_rank") <= F.ceil(F.col("_n") * ev.test_fraction)
        info = {"method": "stratified", "test_fraction": ev.test_fraction, "seed": ev.seed}
    else:  # event logs: a customer's rows stay on one side
        test = F.pmod(F.xxhash64("customer_id", F.lit(ev.seed)), F.lit(1000)) < int(ev.test_fraction * 1000)
        info = {"method": "stratified by customer hash (grouped)", "test_fraction": ev.test_fraction}
    marked = features.withColumn("_test", test).drop("_rank", "_n").cache()
    counts = {(r["_test"], r["label"]): r["count"] for r in marked.groupBy("_test", "label").count().collect()}
    info["rows"] = {"train": counts.get((False, 0), 0) + counts.get((False, 1), 0),
                    "train_positives": counts.get((False, 1), 0),
                    "eval": counts.get((True, 0), 0) + counts.get((True, 1), 0), "eval_positives": counts.get((True, 1), 0)}
    r = info["rows"]
    if not r["train_positives"] or not r["eval_positives"] or r["train_positives"] == r["train"]:
        raise LakehouseError(f"profile '{profile.name}': the split leaves a side without both classes ({r}); "
                             "more rows or another evaluation setting are needed")
    pos_weight = ((r["train"] - r["train_positives"]) / r["train_positives"]
                  if profile.training.class_weight == "balanced" else 1.0)
    info["positive_class_weight"] = round(pos_weight, 3)
    info["class_weight"] = profile.training.class_weight
    train = marked.where(~F.col("_test")).withColumn(
        "weight", F.when(F.col("label") == 1, F.lit(pos_weight)).otherwise(F.lit(1.0))).drop("_test")
    return train, marked.where(F.col("_test")).drop("_test"), info


# ---- the run ------------------------------------------------------------------------------------
def run_profile(spark: SparkSession, settings: Settings, profile: Profile, file: Path, run_date: dt.date,
                out_dir: Path | None = None, run_id: str | None = None, replace: bool = False) -> ByodResult:
    from lakehouse.byod import report
    from lakehouse.silver.stage import validate_table

    run_id = run_id or new_run_id(f"byod-{profile.name}", run_date)
    out_dir = out_dir or settings.path("var/byod") / profile.name / f"date={run_date.isoformat()}"
    out_dir.mkdir(parents=True, exist_ok=True)
    file = Path(file)
    if not file.is_file():
        raise LakehouseError(f"{file}: no such file")
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    header = read_header(file, profile)
    undeclared = check_header(profile, header, str(file))
    refuse_changed_columns(spark, settings, profile, header, file, replace)
    spec = table_rules(profile)
    sha, folder, name = land_raw(settings, profile, file, run_date, run_id)
    bronze = load_bronze(spark, settings, profile, folder, name, header, run_date, run_id)
    if profile.shape == "snapshot":
        check_label_values(bronze, profile, str(file))
    seconds["raw_bronze"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    pii_key = secret(settings.quality.pii_key_env, "quality.pii_key_env")
    outcome, silver, quarantine, annotated = validate_table(spark, settings, spec, run_date, run_id, pii_key,
                                                            bronze=bronze, all_raw=True)  # (findings read them)
    found = findings(annotated, spec, profile, outcome, undeclared)
    meta = delta_io.commit_metadata(run_id, "byod", run_date.isoformat(), profile=profile.name)
    q = quarantine.withColumn("_ingest_date", F.lit(run_date.isoformat()).cast("date")).withColumn("_run_id", F.lit(run_id))
    rows = {"lines": outcome.bronze_rows, "silver": outcome.silver_rows, "quarantined": outcome.quarantined,
            "duplicates_removed": outcome.duplicates_removed, "superseded": outcome.superseded}
    if not outcome.passed:
        report.write_quality(out_dir, profile, file, sha, run_date, rows, found, outcome.rule_rows, [], outcome.failures)
        annotated.unpersist()
        raise LakehouseError(f"profile '{profile.name}' on {file}: {len(outcome.failures)} error-level quality "
                             "rule(s) failed: " + "; ".join(outcome.failures) + f". Nothing was written past "
                             f"bronze; see {out_dir / 'quality_report.md'}")
    delta_io.replace_where(q, tables.quarantine("byod").uri(settings),
                           f"_ingest_date = '{run_date}' AND table = '{spec.table}'", meta)
    silver_table = tables.byod_silver(profile.table)
    silver_uri = silver_table.uri(settings)
    delta_io.replace_partition(silver.withColumn("_ingest_date", F.lit(run_date.isoformat()).cast("date"))
                               .withColumn("_run_id", F.lit(run_id)), silver_uri, silver_table.partition,
                               run_date.isoformat(), meta)
    annotated.unpersist()
    silver_rows = delta_io.read(spark, silver_uri).where(F.col("_ingest_date") == F.lit(run_date.isoformat()).cast("date"))
    suggested = suggestions(spark, silver_rows)
    seconds["quality_silver"] = round(time.perf_counter() - t, 1)
    log.info("silver.%s: %s; %d findings, %d Deequ suggestions", profile.table, rows, len(found), len(suggested))

    t = time.perf_counter()
    if profile.shape == "snapshot":
        features = snapshot_features(silver_rows, profile, run_date)
        numeric = profile.numeric_columns
    else:
        events = events_frame(silver_rows, profile).cache()
        features = event_features(events, profile, event_cutoffs(events, profile))
        numeric = EVENT_FEATURES
    gold_table = tables.byod_features(profile.table)
    gold_uri = gold_table.uri(settings)
    delta_io.replace_partition(features.withColumn("run_date", F.lit(run_date)), gold_uri, gold_table.partition,
                               run_date.isoformat(), meta)
    gold = delta_io.read(spark, gold_uri).where(F.col("run_date") == F.lit(run_date)).drop("run_date")
    if profile.shape == "event_log":
        events.unpersist()
    bronze_table = tables.bronze(profile.table)
    versions = {bronze_table.qualified: delta_io.latest_version(spark, bronze_table.uri(settings)),
                silver_table.qualified: delta_io.latest_version(spark, silver_uri),
                gold_table.qualified: delta_io.latest_version(spark, gold_uri)}
    seconds["gold"] = round(time.perf_counter() - t, 1)

    t = time.perf_counter()
    train, evaluation, split_info = split(gold, profile)
    metrics, best, registered, mlflow_run = _train(settings, profile, train, evaluation, numeric, split_info,
                                                   versions, sha, run_date, run_id, out_dir)
    seconds["train"] = round(time.perf_counter() - t, 1)
    result = ByodResult(profile.name, profile.shape, run_date.isoformat(), run_id, str(file), sha, rows, found,
                        suggested, split_info, metrics, best, registered, mlflow_run, str(out_dir), versions, seconds)
    report.write_quality(out_dir, profile, file, sha, run_date, rows, found, outcome.rule_rows, suggested, [])
    report.write_model_report(out_dir, profile, result, numeric)
    quarantined = delta_io.read(spark, tables.quarantine("byod").uri(settings)).where(
        (F.col("_ingest_date") == F.lit(run_date.isoformat()).cast("date")) & (F.col("table") == spec.table))
    report.write_html(out_dir, profile, result, report.column_profile(silver_rows, profile),
                      report.quarantine_samples(quarantined, profile))
    report.publish(settings, profile, run_date, out_dir, run_id)
    return result


def _train(settings: Settings, profile: Profile, train: DataFrame, evaluation: DataFrame, numeric: list[str],
           split_info: dict, versions: dict, sha: str, run_date: dt.date, run_id: str, out_dir: Path):
    import mlflow

    from lakehouse.byod import modeling
    from lakehouse.ml import tracking
    from lakehouse.ml.train import _code_version, fit_partitions

    tracking.setup(settings, f"byod-{profile.name}-{settings.env}")
    categorical = profile.categorical_columns
    train = fit_partitions(train).cache()
    evaluation = fit_partitions(evaluation).cache()
    with mlflow.start_run(run_name=f"byod-{profile.name}-{run_date}") as parent:
        mlflow.set_tags({"profile": profile.name, "shape": profile.shape, "run_date": run_date.isoformat(),
                         "pipeline_run_id": run_id, "code_version": _code_version(), "file_sha256": sha})
        mlflow.log_params({"evaluation": split_info["method"], "cv_folds": profile.training.cv_folds,
                           "positive_class_weight": split_info["positive_class_weight"],
                           **{f"table_version.{k}": v for k, v in versions.items()}})
        mlflow.log_metrics({f"rows_{k}": v for k, v in split_info["rows"].items()})
        mlflow.log_dict({"profile": profile.model_dump(mode="json"), "split": split_info, "table_versions": versions,
                         "numeric": numeric, "categorical": categorical}, "training_set.json")
        r = split_info["rows"]
        results, models, notes = modeling.train_all(settings, profile, train, evaluation, numeric, categorical,
                                                    r["train"], r["train_positives"] / r["train"], out_dir / "plots")
        split_info["modeling"] = notes
        best = modeling.champion(results)
        example = train.select(*numeric, *categorical).limit(5).toPandas()
        with mlflow.start_run(run_id=results[best]["mlflow_run_id"], nested=True):
            info = tracking.log_spark_model(settings, models[best], example, profile.table)
        tracking.client(settings).set_model_version_tag(profile.table, str(info.registered_model_version),
                                                        "threshold", str(results[best]["threshold"]))
        mlflow.log_metric("best_roc_auc", results[best]["roc_auc"])
        parent_id = parent.info.run_id
    train.unpersist()
    evaluation.unpersist()
    metrics = {a: {k: v for k, v in m.items() if k != "mlflow_run_id"} for a, m in results.items()}
    return metrics, best, str(info.registered_model_version), parent_id
