"""The table catalog: every Delta table of the lake declared once (layer, name, partitioning), and the
raw zone's partitions.

Delta tables live at ``<lake>/<layer>/<name>``; raw files at
``<lake>/raw/source=<source>/type=<type>/date=<YYYY-MM-DD>/``. Modules name a table by its entry
here (``tables.FEATURES.uri(settings)``) and read and write it through ``lakehouse.delta_io``; the
families of tables with one entry per source or entity (bronze tables, silver tables and their
histories, quarantines, entity checkpoints) are functions returning the entry. The SQL names
(``gold.customer_daily_features``) are ``Table.qualified``; ``lakehouse/sql/gold_ddl.sql`` gives the
gold tables' schemas and must place each at its entry's location (tests/unit/test_tables.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

LAYERS = ("bronze", "silver", "gold", "ops")


@dataclass(frozen=True)
class Table:
    """A Delta table: ``<lake>/<layer>/<name>``, partitioned by ``partition_by`` (the first column is
    the one a dated job replaces)."""

    layer: str
    name: str
    partition_by: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.layer not in LAYERS:
            raise ValueError(f"layer must be one of {LAYERS}, got {self.layer!r}")

    @property
    def qualified(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def rel(self) -> str:
        """Its folder relative to the lake root."""
        return f"{self.layer}/{self.name}"

    @property
    def partition(self) -> str:
        if not self.partition_by:
            raise ValueError(f"{self.qualified} is not partitioned")
        return self.partition_by[0]

    def uri(self, settings) -> str:
        return f"{settings.lake_uri}/{self.rel}"


# ---- bronze: one table per source and record type, append per ingest date ----
def bronze_table(source: str, type_: str) -> str:
    """``crm`` + ``customers`` -> ``crm_customers``; ``support_api`` + ``nps`` -> ``support_nps``."""
    prefix = source[:-4] if source.endswith("_api") else source
    return f"{prefix}_{type_}"


def bronze(name: str) -> Table:
    """A bronze table by its name (``bronze_table(source, type)``, or a BYOD profile's table)."""
    return Table("bronze", name, ("_ingest_date",))


# ---- silver: validated tables, the versions of slowly changing entities, quarantines ----
def silver(name: str) -> Table:
    return Table("silver", name)


def silver_history(entity: str) -> Table:
    """Every accepted version of a slowly changing entity (customers, subscriptions, tickets)."""
    return Table("silver", f"{entity}_history", ("_ingest_date",))


def quarantine(source: str) -> Table:
    """Rows a source's rules rejected, with rule and reason code (a date's rows of a table are replaced
    by a predicate on ``_ingest_date`` and ``table``)."""
    return Table("silver", f"quarantine_{source}")


# ---- gold ----
ACTIVITY = Table("gold", "customer_activity_daily", ("ingest_date",))
LIFETIME_STATE = Table("gold", "customer_lifetime_state", ("as_of_date",))
FEATURES = Table("gold", "customer_daily_features", ("snapshot_date",))
LABELS = Table("gold", "churn_labels", ("snapshot_date",))
SCORES = Table("gold", "churn_scores", ("score_date",))
ANALYSIS = Table("gold", "customer_analysis")


def entity_checkpoints(entity: str) -> Table:
    """Monthly state of an entity, fingerprinted by the history files it was built from."""
    return Table("gold", f"{entity}_state_checkpoints", ("checkpoint_date", "_covers"))


def byod_silver(name: str) -> Table:
    """A bring-your-own-data profile's validated rows (replaced per extract date)."""
    return Table("silver", name, ("_ingest_date",))


def byod_features(name: str) -> Table:
    """A bring-your-own-data profile's features (replaced per extract date)."""
    return Table("gold", f"{name}_features", ("run_date",))


def byod_scores(name: str) -> Table:
    """A bring-your-own-data profile's scores of scored files (replaced per run date)."""
    return Table("gold", f"{name}_scores", ("run_date",))


# ---- ops: what runs did and saw ----
INGEST_AUDIT = Table("ops", "ingest_audit")
TASK_RUNS = Table("ops", "task_runs")
RUN_LEDGER = Table("ops", "run_ledger")
RECONCILIATION = Table("ops", "reconciliation")
QUALITY_METRICS = Table("ops", "quality_metrics")
FEATURE_DRIFT = Table("ops", "feature_drift", ("score_date",))
MODEL_PERFORMANCE = Table("ops", "model_performance", ("score_date",))
ERASURES = Table("ops", "erasures")

GOLD = (ACTIVITY, LIFETIME_STATE, FEATURES, LABELS, SCORES, ANALYSIS)
OPS = (INGEST_AUDIT, TASK_RUNS, RUN_LEDGER, RECONCILIATION, QUALITY_METRICS, FEATURE_DRIFT, MODEL_PERFORMANCE,
       ERASURES)


def deequ_metrics_path(settings, table: str) -> str:
    """Deequ's file-system metrics repository of a silver table (a JSON file, not a Delta table)."""
    return f"{settings.lake_uri}/ops/deequ_metrics/{table}.json"


def parse(qualified: str) -> Table:
    """``layer.name`` -> its Table: a declared entry, a member of a family (bronze tables, entity
    histories, entity checkpoints), or an undeclared table of the layer (BYOD's, quarantines, silver)."""
    layer, _, name = qualified.partition(".")
    if not name or layer not in LAYERS:
        raise ValueError(f"table must be <layer>.<name> with layer in {list(LAYERS)}, got {qualified!r}")
    known = {t.qualified: t for t in (*GOLD, *OPS)}
    if qualified in known:
        return known[qualified]
    if layer == "bronze":
        return bronze(name)
    if layer == "silver" and name.endswith("_history"):
        return silver_history(name[: -len("_history")])
    if layer == "gold" and name.endswith("_state_checkpoints"):
        return entity_checkpoints(name[: -len("_state_checkpoints")])
    return Table(layer, name)


# ---- the raw zone ----
def raw_partition(source: str, type_: str, run_date: dt.date) -> str:
    return f"raw/source={source}/type={type_}/date={run_date.isoformat()}"
