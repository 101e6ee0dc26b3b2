"""A registered model's training set, rebuilt and checked: ``lakehouse model training-set``.

Training records, in the run's ``training_set.json``, the snapshot dates, the feature versions and the
Delta version of every table it read, and, there and as tags of the registered version
(``training_rows``, ``training_checksum``), the row count and an order-insensitive content checksum
of the training rows. Rebuilding reads the same tables at the same versions (Delta time travel) and
compares. Retention keeps those versions while a registered version needs them (``model_pins``,
``versioning.vacuum``).

Erasure rewrites tables (and, by default, destroys their older versions). Training therefore also
records, in ``customer_checksums.json``, each customer's rows and share of the checksum under the
customer's erasure id (the keyed hash ``lakehouse erase`` records in ``ops/erasures``, so no customer id
leaves the lake). The checksum is a sum of row hashes, so the recorded set without some customers has
the recorded checksum minus theirs. A table an erasure rewrote after the recorded version is rebuilt
from the version the erasure wrote, and the result must equal the recorded set minus the erased
customers' rows (docs/versioning.md has the guarantees and their tests).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pyspark.sql import DataFrame, SparkSession

from lakehouse import delta_io, tables
from lakehouse.config import Settings
from lakehouse.errors import LakehouseError

log = logging.getLogger(__name__)


CUSTOMER_CHECKSUMS = "customer_checksums.json"


def content(frame: DataFrame) -> dict:
    """Row count and content checksum of a training set (order-insensitive, every column)."""
    rows, checksum = delta_io.content_checksum(frame)
    return {"rows": rows, "checksum": checksum}


def content_by_customer(settings: Settings, frame: DataFrame) -> tuple[dict, dict[str, list] | None]:
    """``content(frame)`` and, in the same aggregation, each customer's ``[rows, checksum part]`` keyed by
    the customer's erasure id; the parts add up to the whole (``delta_io.checksums_by``). Without the
    personal-data key (``quality.pii_key_env``) there are no erasure ids: the parts are None."""
    from lakehouse.erasure import erasure_id
    from lakehouse.errors import ConfigError

    try:
        erasure_id(settings, "probe")
    except ConfigError as exc:
        log.warning("no per-customer checksums of the training set (%s): a rebuild after an erasure cannot be "
                    "checked", exc)
        return content(frame), None
    parts: dict[str, list] = {}
    for cid, (n, s) in delta_io.checksums_by(frame, "customer_id").items():
        key = erasure_id(settings, str(cid))
        old = parts.get(key, [0, "0"])
        parts[key] = [old[0] + n, str(int(old[1]) + int(s))]
    whole = {"rows": sum(p[0] for p in parts.values()), "checksum": str(sum(int(p[1]) for p in parts.values()))}
    return whole, parts


def without(recorded: dict, parts: dict[str, list], erased: list[str]) -> tuple[dict, dict]:
    """The recorded content minus the erased customers' parts, and what was taken away
    (``{"customers": k, "rows": n}``; a customer absent from the training set takes nothing)."""
    gone = [parts[e] for e in dict.fromkeys(erased) if e in parts]
    rows = sum(g[0] for g in gone)
    return ({"rows": recorded["rows"] - rows,
             "checksum": str(int(recorded["checksum"]) - sum(int(g[1]) for g in gone))},
            {"customers": len(gone), "rows": rows})


def record(name: str, version: str, dates: list[dt.date], retrieval, content: dict, code_version: str,
           per_customer: bool = True) -> dict:
    """The ``lineage.json`` artifact of a training run: which registered version it made and what
    rebuilding its training set needs (tables at versions, snapshot dates, feature versions) and gives
    (row count and content checksum); ``lakehouse model training-set`` and ``table vacuum`` read the
    same facts from ``training_set.json``."""
    return {"model": name, "version": str(version), "code_version": code_version,
            "tables": dict(retrieval.table_versions), "snapshot_dates": [d.isoformat() for d in dates],
            "features": list(retrieval.features), "training_rows": content["rows"],
            "training_checksum": content["checksum"], "customer_checksums": CUSTOMER_CHECKSUMS if per_customer else None,
            "erasures": [], "rebuild": f"lakehouse model training-set {name}/{version}"}


def tag_content(client, name: str, version: str, recorded: dict) -> None:
    client.set_model_version_tag(name, version, "training_rows", str(recorded["rows"]))
    client.set_model_version_tag(name, version, "training_checksum", recorded["checksum"])


def model_version(client, spec: str, default_name: str):
    """``name@alias``, ``name/version``, ``@alias`` or ``name`` (its champion) -> the registered version."""
    from mlflow.exceptions import MlflowException

    name, alias, version = spec, None, None
    if "@" in spec:
        name, alias = spec.split("@", 1)
    elif "/" in spec:
        name, version = spec.split("/", 1)
    else:
        alias = "champion"
    name = name or default_name
    try:
        return client.get_model_version_by_alias(name, alias) if alias else client.get_model_version(name, version)
    except MlflowException as exc:
        raise LakehouseError(f"no registered model version {spec!r}: {str(exc).splitlines()[0]}") from None


@dataclass
class Rebuilt:
    model: str
    version: str
    train_run_id: str
    table_versions: dict[str, int]          # the versions read
    dates: list[str]
    recorded: dict | None
    rebuilt: dict
    equal: bool | None
    recorded_versions: dict[str, int] = field(default_factory=dict)
    erasures: list[dict] = field(default_factory=list)   # applied since training
    expected: dict | None = None            # the recorded content minus the erased customers' rows
    removed: dict | None = None             # {"customers": k, "rows": n} taken away by those erasures
    recorded_now: bool = False
    written_to: str | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return asdict(self)


def _artifact_json(client, run_id: str, name: str):
    from mlflow.exceptions import MlflowException

    try:
        with open(client.download_artifacts(run_id, name)) as fh:
            return json.load(fh)
    except (MlflowException, OSError):
        return None


def erasure_records(spark: SparkSession, settings: Settings) -> list[dict]:
    """Every ``lakehouse erase`` recorded in ``ops/erasures``, oldest first: its id, date, and per table
    it rewrote the versions before and after (``versions`` is None for erasures recorded before
    versions were)."""
    uri = tables.ERASURES.uri(settings)
    if not delta_io.is_delta(spark, uri):
        return []
    df = delta_io.read(spark, uri)
    has_versions = "versions" in df.columns
    out = [{"erasure_id": r["erasure_id"], "requested_on": r["requested_on"], "purged": r["purged"],
            "versions": json.loads(r["versions"]) if has_versions and r["versions"] else None}
           for r in df.collect()]
    return sorted(out, key=lambda e: (e["requested_on"], e["erasure_id"]))


def since_training(table_versions: dict[str, int], erasures: list[dict]) -> tuple[dict[str, int], list[dict]]:
    """The table versions a rebuild reads and the erasures applied since training: a table an erasure
    rewrote after its recorded version is read at the version that erasure wrote (the latest such)."""
    read = {t: int(v) for t, v in table_versions.items()}
    applied = []
    for e in erasures:
        hit = {}
        for rel, v in (e.get("versions") or {}).items():
            table = rel.replace("/", ".", 1)
            if table in table_versions and int(v["after"]) > int(table_versions[table]):
                read[table] = max(read[table], int(v["after"]))
                hit[table] = v
        if hit:
            applied.append({**e, "tables": hit})
    return read, applied


def rebuild_training_set(spark: SparkSession, settings: Settings, client, mv, out: Path | None = None) -> Rebuilt:
    """Rebuild ``mv``'s recorded training set from the recorded table versions (or, for a table an erasure
    rewrote since, from the erasure's version) and compare its content with the recorded checksum, minus
    the erased customers' rows; a version trained before checksums were recorded gets them now."""
    from lakehouse.ml.dataset import build_training_set

    run_id = mv.tags.get("train_run_id")
    if not run_id:
        raise LakehouseError(f"{mv.name} v{mv.version} has no train_run_id tag: not trained by this pipeline")
    recorded = _artifact_json(client, run_id, "training_set.json")
    if recorded is None:
        raise LakehouseError(f"{mv.name} v{mv.version}: run {run_id} has no training_set.json")
    recorded_versions = {t: int(v) for t, v in recorded["table_versions"].items()}
    erasures = erasure_records(spark, settings)
    versions, applied = since_training(recorded_versions, erasures)
    dates = [dt.date.fromisoformat(d) for d in recorded["dates"]]
    try:
        ts = build_training_set(spark, settings, dates[-1], versions=versions, dates=dates,
                                features=recorded["features"])
        got = content(ts.frame)
    except Exception as exc:  # a vacuumed version, a dropped table: say which, not a stack trace
        raise LakehouseError(f"{mv.name} v{mv.version}: the training set cannot be rebuilt from "
                             f"{versions}: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                             ) from None
    stored = recorded.get("content")
    if stored is None and mv.tags.get("training_checksum"):
        stored = {"rows": int(mv.tags["training_rows"]), "checksum": mv.tags["training_checksum"]}
    result = Rebuilt(mv.name, str(mv.version), run_id, versions, recorded["dates"], stored, got, None,
                     recorded_versions=recorded_versions, expected=stored)
    unknown = [e["erasure_id"] for e in erasures if e["versions"] is None]
    if unknown:
        result.notes.append(f"{len(unknown)} erasure(s) recorded no table versions; they are not accounted for")
    parts = _artifact_json(client, run_id, CUSTOMER_CHECKSUMS) if applied else None
    changed_between: list[str] = []
    for e in applied:
        took = (parts or {}).get(e["erasure_id"], [0, "0"])
        result.erasures.append({"erasure_id": e["erasure_id"], "requested_on": e["requested_on"],
                                "tables": {t: v["after"] for t, v in e["tables"].items()},
                                "rows": took[0] if parts is not None else None})
        changed_between += [f"{t} v{recorded_versions[t]} -> v{v['before']}" for t, v in e["tables"].items()
                           if v.get("before") is not None and int(v["before"]) > recorded_versions[t]]
    if stored is None:  # trained before checksums were recorded: record what the recorded versions give
        tag_content(client, mv.name, str(mv.version), got)
        result.recorded_now = True
        result.notes.append("no checksum was recorded at training; the rebuilt set's is now recorded on the version")
    elif applied and parts is None:
        result.notes.append(f"{len(applied)} erasure(s) rewrote its tables since training, but no per-customer "
                            "checksums were recorded at training: the rebuilt set cannot be checked")
    else:
        if applied:
            result.expected, result.removed = without(stored, parts, [e["erasure_id"] for e in applied])
        result.equal = result.expected == got
        if not result.equal and parts is not None:
            _, got_parts = content_by_customer(settings, ts.frame)
            if got_parts is not None:
                result.notes.append(_difference(parts, got_parts, [e["erasure_id"] for e in applied]))
        if not result.equal and changed_between:
            result.notes.append("commits between training and the erasure are read too (the erased versions are "
                                f"gone): {', '.join(changed_between)}; one that rewrote a training date changes the set")
    if out is not None:
        ts.frame.write.mode("overwrite").parquet(str(out))
        result.written_to = str(out)
    return result


def _difference(parts: dict[str, list], got: dict[str, list], erased: list[str]) -> str:
    """Which customers' rows differ between the recorded set (minus the erased) and the rebuilt one,
    counted (the keys are keyed hashes, so no id is shown)."""
    want = {k: v for k, v in parts.items() if k not in set(erased)}
    missing = len(want.keys() - got.keys())
    extra = len(got.keys() - want.keys())
    changed = sum(1 for k in want.keys() & got.keys() if want[k] != got[k])
    return (f"per customer: {missing} recorded customer(s) missing, {extra} customer(s) not in the recorded set, "
            f"{changed} customer(s) whose rows differ")


def _trained_versions(settings: Settings, client):
    """(model version, training run id, its training_set.json) of every version of the configured model
    that is not archived and was trained by this pipeline."""
    from mlflow.exceptions import MlflowException

    try:
        versions = client.search_model_versions(f"name='{settings.model.name}'")
    except MlflowException:
        return
    for mv in versions:
        run_id = mv.tags.get("train_run_id") if mv.tags else None
        if getattr(mv, "current_stage", None) == "Archived" or not run_id:
            continue
        recorded = _artifact_json(client, run_id, "training_set.json")
        if recorded is None:
            log.warning("%s v%s: no training_set.json in run %s; it pins no table version", mv.name, mv.version, run_id)
            continue
        yield mv, run_id, recorded


def model_pins(settings: Settings, client=None, erasures: list[dict] | None = None) -> dict[str, list[dict]]:
    """Which table versions registered model versions need to rebuild their training sets: per table
    (``layer.name``), one entry per model version that read it (model, version, table version).

    Every version of the configured model that is not archived pins (a deleted one is gone from the
    registry, so it pins nothing); a version with no recorded training set pins nothing either. With
    ``erasures`` (``erasure_records``), a table an erasure rewrote since training pins the version the
    erasure wrote, which is the one a rebuild reads."""
    from lakehouse.ml import tracking

    client = client or tracking.client(settings)
    pins: dict[str, list[dict]] = {}
    for mv, _, recorded in _trained_versions(settings, client):
        versions, _ = since_training(recorded.get("table_versions", {}), erasures or [])
        for table, version in versions.items():
            pins.setdefault(table, []).append({"model": mv.name, "version": str(mv.version),
                                               "table_version": int(version)})
    return pins


def note_erasure(settings: Settings, erasure: dict, client=None) -> list[dict]:
    """After ``lakehouse erase``: every registered version whose training tables the erasure rewrote gets
    it appended to its run's ``lineage.json``; returns, per such version, how many of its training rows
    were the erased customer's (None when no per-customer checksums were recorded)."""
    from lakehouse.ml import tracking

    uri = tracking.tracking_uri(settings)
    if uri.startswith("sqlite:///") and not Path(uri.removeprefix("sqlite:///")).exists():
        return []  # no registry yet: no model to tell
    client = client or tracking.client(settings)
    out = []
    for mv, run_id, recorded in _trained_versions(settings, client):
        _, applied = since_training(recorded.get("table_versions", {}), [erasure])
        if not applied:
            continue
        parts = _artifact_json(client, run_id, CUSTOMER_CHECKSUMS)
        rows = (parts.get(erasure["erasure_id"], [0])[0]) if parts is not None else None
        record_ = _artifact_json(client, run_id, "lineage.json") or {}
        record_.setdefault("erasures", []).append(
            {"erasure_id": erasure["erasure_id"], "requested_on": erasure["requested_on"],
             "tables": {t: v["after"] for t, v in applied[0]["tables"].items()}, "training_rows": rows})
        client.log_dict(run_id, record_, "lineage.json")
        out.append({"model": mv.name, "version": str(mv.version), "training_rows_erased": rows})
    return out
