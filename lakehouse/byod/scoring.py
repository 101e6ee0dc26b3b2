"""``lakehouse byod score``: score a new file of a profile's shape with the profile's registered model.

The file goes through the profile's checks as a training file does (header, types, the profile's rules,
exact duplicates; bad rows quarantined under ``<table>_score`` in ``silver.quarantine_byod``), except that
a snapshot's label column may be missing (it is ignored when present). Features are built as for
training (a snapshot's rows as of the run date; an event log's customers active before the run date,
from events before it), scored with the registered version (latest unless given) and written to
``gold.byod_<profile>_scores``, replaced per run date: ``customer_id, as_of, score, contact`` (score at
or above the version's recorded threshold), the model version and the run id.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from lakehouse import delta_io, tables
from lakehouse.byod.pipeline import event_features, events_frame, land_raw, parse_file, snapshot_features, table_rules
from lakehouse.byod.profile import Profile, check_header, normalize, read_header
from lakehouse.config import Settings, secret
from lakehouse.errors import LakehouseError
from lakehouse.run_ids import new_run_id

log = logging.getLogger(__name__)


def registered_version(settings: Settings, profile: Profile, version: str | None):
    """The profile's registered model version (``version``, or the latest)."""
    from lakehouse.ml import tracking

    client = tracking.client(settings)
    versions = client.search_model_versions(f"name='{profile.table}'")
    if not versions:
        raise LakehouseError(f"profile '{profile.name}' has no registered model ({profile.table}): run "
                             "`lakehouse byod run` on a labelled file first")
    if version is None:
        return max(versions, key=lambda v: int(v.version))
    for v in versions:
        if str(v.version) == str(version):
            return v
    raise LakehouseError(f"{profile.table} has no version {version}; versions: "
                         f"{sorted(int(v.version) for v in versions)}")


def score_file(spark: SparkSession, settings: Settings, profile: Profile, file: Path, run_date: dt.date,
               version: str | None = None, run_id: str | None = None) -> dict:
    from pyspark.ml.functions import vector_to_array

    from lakehouse.ml import tracking
    from lakehouse.silver.stage import validate_table

    started = time.perf_counter()
    run_id = run_id or new_run_id(f"byod-score-{profile.name}", run_date)
    file = Path(file)
    if not file.is_file():
        raise LakehouseError(f"{file}: no such file")
    mv = registered_version(settings, profile, version)
    header = read_header(file, profile)
    check_header(profile, header, str(file), optional=("label",))
    spec = table_rules(profile)
    if profile.shape == "snapshot":  # the label is not needed to score: no rule on it, not read
        lab = normalize(profile.label.column)
        spec = spec.model_copy(update={"columns": {c: s for c, s in spec.columns.items() if c != lab},
                                       "rules": [r for r in spec.rules if r.column != lab],
                                       "table": f"{spec.table}_score"})
    else:
        spec = spec.model_copy(update={"table": f"{spec.table}_score"})
    sha, folder, name = land_raw(settings, profile, file, run_date, run_id, kind="score")
    rows, cached, n_lines, _ = parse_file(spark, profile, folder, name, header, run_date, run_id)
    pii_key = secret(settings.quality.pii_key_env, "quality.pii_key_env")
    outcome, silver, quarantine, annotated = validate_table(spark, settings, spec, run_date, run_id, pii_key,
                                                            bronze=rows)
    cached.unpersist()
    if not outcome.passed:
        annotated.unpersist()
        raise LakehouseError(f"profile '{profile.name}' scoring {file}: {len(outcome.failures)} error-level quality "
                             "rule(s) failed: " + "; ".join(outcome.failures) + ". Nothing was scored.")
    meta = delta_io.commit_metadata(run_id, "byod-score", run_date.isoformat(), profile=profile.name)
    q = quarantine.withColumn("_ingest_date", F.lit(run_date.isoformat()).cast("date")).withColumn("_run_id", F.lit(run_id))
    delta_io.replace_where(q, tables.quarantine("byod").uri(settings),
                           f"_ingest_date = '{run_date}' AND table = '{spec.table}'", meta)
    silver = silver.cache()
    annotated.unpersist()
    if profile.shape == "snapshot":
        features = snapshot_features(silver.withColumn(lab, F.lit(None).cast("string")), profile, run_date)
    else:
        features = event_features(events_frame(silver, profile), profile, [run_date])
    model = tracking.load_spark_model(settings, f"models:/{profile.table}/{mv.version}")
    threshold = float(mv.tags["threshold"]) if mv.tags and mv.tags.get("threshold") else None
    scored = model.transform(features.drop("label")).select(
        "customer_id", "as_of", vector_to_array("probability")[1].alias("score"))
    contact = (F.col("score") >= F.lit(threshold)) if threshold is not None else F.lit(None).cast("boolean")
    out = scored.select("customer_id", "as_of", "score", contact.alias("contact"),
                        F.lit(str(mv.version)).alias("model_version"), F.lit(run_id).alias("_run_id"),
                        F.lit(run_date).alias("run_date"))
    table = tables.byod_scores(profile.table)
    uri = table.uri(settings)
    delta_io.replace_partition(out, uri, table.partition, run_date.isoformat(), meta)
    written = delta_io.read(spark, uri).where(F.col("run_date") == F.lit(run_date))
    counts = written.agg(F.count(F.lit(1)).alias("n"), F.sum(F.col("contact").cast("int")).alias("contacted")).first()
    silver.unpersist()
    result = {"profile": profile.name, "file": str(file), "sha256": sha, "run_date": run_date.isoformat(),
              "run_id": run_id, "model": profile.table, "model_version": str(mv.version), "threshold": threshold,
              "rows": {"lines": n_lines, "checked": outcome.bronze_rows, "quarantined": outcome.quarantined,
                       "duplicates_removed": outcome.duplicates_removed, "scored": int(counts["n"])},
              "contacted": int(counts["contacted"] or 0), "table": table.qualified,
              "table_version": delta_io.latest_version(spark, uri),
              "seconds": round(time.perf_counter() - started, 1)}
    log.info("byod score %s: %s", profile.name, result)
    return result
