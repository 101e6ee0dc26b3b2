"""Configuration: ``conf/base`` plus one overlay chosen by ``--env``, then environment overrides.

Why this shape: everything that differs between a laptop and a cluster (lake root, master, source
endpoints) is configuration, never code. Base config holds no paths, hosts or secrets; overlays do,
and secrets are only ever *names* of environment variables, read when used.

Load order (later wins, dicts merged key by key):
  1. ``conf/base/*.yaml``
  2. ``conf/<env>/*.yaml``
  3. environment variables ``LAKEHOUSE__SECTION__KEY=value`` (value parsed as YAML, so numbers and
     booleans keep their type).

The merged result is validated by pydantic models with ``extra="forbid"``, so a missing or mistyped
key fails with a message naming the key and the files that were read.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lakehouse.errors import ConfigError

log = logging.getLogger(__name__)

# The project folder (conf/, jobs/, .jars/). When the package itself is imported from a zip
# (spark-submit --py-files), that zip is not the project: LAKEHOUSE_PROJECT_ROOT, else the working
# directory, says where it is.
PROJECT_ROOT = Path(os.environ.get("LAKEHOUSE_PROJECT_ROOT") or Path(__file__).resolve().parent.parent)
if not PROJECT_ROOT.is_dir():
    PROJECT_ROOT = Path.cwd()
ENV_PREFIX = "LAKEHOUSE__"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LakeConfig(_Strict):
    """Where the lake lives. ``root`` is a URI: ``file:///abs/path`` or ``hdfs://host:port/path``."""

    root: str
    webhdfs_url: str | None = None  # e.g. http://127.0.0.1:9870, for raw uploads to HDFS
    hdfs_user: str | None = None

    @field_validator("root")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not (value.startswith("file://") or value.startswith("hdfs://") or "://" not in value):
            raise ValueError(f"lake.root must be file://, hdfs:// or a local path, got {value!r}")
        return value


class SparkConfig(_Strict):
    app_prefix: str = "churn"
    # Used only when nothing else (spark-submit --master) chose a master.
    default_master: str | None = None
    jars_dir: str = ".jars/runtime"
    # class-data-sharing archive of the driver JVM's classes, built by `make setup`
    # (lakehouse.jvm_archive); used when present, None to never use one
    class_archive: str | None = ".jars/cds/spark-driver.jsa"
    conf: dict[str, str] = Field(default_factory=dict)


class RetryConfig(_Strict):
    max_attempts: int = Field(ge=1)
    initial_wait_s: float = Field(ge=0)
    max_wait_s: float = Field(ge=0)
    timeout_s: float = Field(gt=0)


class JdbcSource(_Strict):
    kind: Literal["jdbc"]
    url: str
    driver: str
    tables: list[str]
    updated_column: str = "updated_at"
    user_env: str | None = None
    password_env: str | None = None


class FileSource(_Strict):
    kind: Literal["files"]
    inbox: str
    pattern: str  # with {date} placeholder
    format: Literal["csv", "jsonl"]
    type: str


class HttpSource(_Strict):
    kind: Literal["http"]
    base_url: str
    token_env: str
    endpoints: list[str]
    page_size: int = Field(gt=0)


class SourcesConfig(_Strict):
    crm: JdbcSource
    billing: FileSource
    web: FileSource
    support_api: HttpSource


class FaultRates(_Strict):
    missing: float = Field(ge=0, le=1)
    duplicate: float = Field(ge=0, le=1)
    out_of_range: float = Field(ge=0, le=1)
    malformed: float = Field(ge=0, le=1)
    late: float = Field(ge=0, le=1)
    bad_format: float = Field(ge=0, le=1)
    schema_change_day: int | None = None  # day offset from start_date; billing gains a column


class ChurnConfig(_Strict):
    target_monthly_rate: float = Field(gt=0, lt=1)
    tolerance: float = Field(gt=0, lt=1)


class ApiSimConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(ge=0, le=65535)
    rate_limit_per_s: float = Field(gt=0)
    failure_rate: float = Field(ge=0, le=1)
    slow_rate: float = Field(ge=0, le=1)
    slow_seconds: float = Field(ge=0)
    token_env: str


class SimulatorConfig(_Strict):
    seed: int
    start_date: dt.date
    days: int = Field(gt=0)
    customers: int = Field(gt=0)
    output_dir: str
    faults: FaultRates
    churn: ChurnConfig
    api: ApiSimConfig


class QualityConfig(_Strict):
    pii_key_env: str  # environment variable holding the key of the personal-data hash
    # rate-based gates judge a batch only from this many rows on; smaller batches warn instead
    gate_min_rows: int = Field(default=50, ge=0)
    # a date's bronze rows at least this large (Spark's estimate of the files read) are hash-partitioned
    # on the business key before they are checked: one shuffle instead of three (docs/benchmarks.md)
    partition_by_key_min_mb: float = Field(default=8.0, ge=0)
    # a date's bronze rows at least this large are checked and written with Spark's code generation
    # even where the overlay runs Spark SQL interpreted (local, test: best for small dates); null: never
    compile_min_mb: float | None = Field(default=6.0, ge=0)
    # where the history load keeps a table's checked rows of the whole range while it counts and writes
    # them: "memory" (Spark's cache: memory, spilling what does not fit), "disk" (on local disk only),
    # "auto" (on disk when the cache, estimated from the bronze files, would fill more than half of the
    # storage memory; docs/benchmarks.md)
    history_cache: Literal["auto", "memory", "disk"] = "auto"


class GoldConfig(_Strict):
    label_horizon_days: int = Field(gt=0)   # churned within H days after the snapshot date
    # entity states come from a monthly checkpoint once the entity's silver history is this big (MiB)
    entity_checkpoint_min_mb: float = Field(default=32.0, ge=0)


class FeatureStoreConfig(_Strict):
    online_path: str      # SQLite file of the online store (latest feature values per customer)
    view: str = "customer_daily"  # the feature view jobs materialize and models read


class CostConfig(_Strict):
    offer_cost: float = Field(ge=0)
    saved_customer_value: float = Field(ge=0)
    offer_success_rate: float = Field(ge=0, le=1)


class ModelSizes(_Strict):
    """Size of the tree ensembles (the tests train smaller ones on their small data)."""
    forest_trees: int = Field(default=60, ge=1)      # random forest: trees
    boosting_rounds: int = Field(default=30, ge=1)   # gradient-boosted trees: iterations


class ModelGrids(_Strict):
    """Values cross-validation tries per algorithm: every combination of one algorithm's lists is a
    candidate (names are Spark MLlib parameters of that classifier). One value per list: no tuning."""
    logistic_regression: dict[str, list[int | float | str]]
    random_forest: dict[str, list[int | float | str]]
    gbt: dict[str, list[int | float | str]]

    @field_validator("*")
    @classmethod
    def _non_empty(cls, grid: dict[str, list]) -> dict[str, list]:
        empty = [name for name, values in grid.items() if not values]
        if empty:
            raise ValueError(f"no values to try for {', '.join(empty)}")
        return grid


class ModelConfig(_Strict):
    name: str
    experiment_prefix: str
    view: str
    features: list[str] = Field(min_length=1)
    snapshot_every_days: int = Field(ge=1)
    eval_fraction: float = Field(gt=0, lt=1)
    cv_folds: int = Field(ge=2)
    max_training_rows: int = Field(default=250_000, ge=0)  # sampled (stratified) beyond this; 0 = no cap
    # cross-validation compares candidates on a stratified sample of this many training rows at most, and the
    # chosen one is fitted on all of them; 0 = cross-validate on every training row
    max_cv_rows: int = Field(default=0, ge=0)
    compile_min_rows: int | None = Field(default=100_000, ge=0)  # fitted with code generation from here; None = never
    # candidates cross-validation fits at once (threads of one Spark application; 1 = one at a time)
    cv_parallelism: int = Field(default=1, ge=1)
    algorithms: list[Literal["logistic_regression", "random_forest", "gbt"]] = Field(min_length=1)
    selection_metric: Literal["roc_auc", "pr_auc"]
    champion_margin: float = Field(ge=0)
    seed: int
    costs: CostConfig
    risk_bands: dict[str, float]
    drift_psi_threshold: float = Field(gt=0)
    drift_exclude: list[str] = Field(default_factory=list)
    # the drift reference: the rows of this many latest labelled snapshot dates (ml.monitoring.reference_rows)
    drift_reference_dates: int = Field(default=3, ge=1)
    sizes: ModelSizes = Field(default_factory=ModelSizes)
    grid: ModelGrids


class MlflowConfig(_Strict):
    tracking_uri: str        # sqlite:///relative/or/absolute.db, or http(s)://server
    artifact_root: str       # local folder (relative to the project) or a URI


class RetentionConfig(_Strict):
    log_retention_days: int = Field(ge=1)            # how long the Delta log (time travel metadata) is kept
    deleted_file_retention_hours: int = Field(ge=0)  # VACUUM keeps files older versions need for this long


class MaintenanceConfig(_Strict):
    # a partition (or an unpartitioned table) holding this many files or more is compacted
    compact_min_files: int = Field(default=4, ge=2)
    # <layer>.<name> -> columns to Z-order the table by when it is compacted (none by default)
    zorder: dict[str, list[str]] = Field(default_factory=dict)


class DemoConfig(_Strict):
    days: int = Field(gt=0)
    daily_days: int = Field(default=2, ge=1)  # the last dates run through the daily path (the rest: the history load)


class Settings(_Strict):
    env: str
    project_root: str
    lake: LakeConfig
    spark: SparkConfig
    retry: RetryConfig
    sources: SourcesConfig
    simulator: SimulatorConfig
    logs_dir: str
    # independent pieces of one step (sources of an ingest, tables of silver) run side by side in
    # one Spark application, at most this many at a time (1 = one after another)
    parallelism: int = Field(default=4, ge=1)
    schemas: dict[str, list[str]]
    demo: DemoConfig
    quality: QualityConfig
    gold: GoldConfig
    feature_store: FeatureStoreConfig
    model: ModelConfig
    mlflow: MlflowConfig
    retention: RetentionConfig
    maintenance: MaintenanceConfig = Field(default_factory=MaintenanceConfig)

    # ---- derived helpers -------------------------------------------------------------------
    def path(self, value: str) -> Path:
        """Resolve a local path from config relative to the project root."""
        p = Path(value)
        return p if p.is_absolute() else Path(self.project_root) / p

    @property
    def lake_uri(self) -> str:
        """The lake root as a URI (``file:///abs`` for local paths)."""
        root = self.lake.root
        if "://" not in root:
            return self.path(root).resolve().as_uri()
        return root.rstrip("/")

    def source_types(self, source: str) -> list[str]:
        """The data types one source delivers (tables, endpoints, or its single file type)."""
        cfg = getattr(self.sources, source)
        if cfg.kind == "jdbc":
            return list(cfg.tables)
        if cfg.kind == "http":
            return list(cfg.endpoints)
        return [cfg.type]

    @property
    def is_hdfs(self) -> bool:
        return self.lake_uri.startswith("hdfs://")


def _read_yaml_dir(folder: Path) -> tuple[dict[str, Any], list[str]]:
    merged: dict[str, Any] = {}
    files = []
    for file in sorted(folder.glob("*.yaml")):
        try:
            data = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: not valid YAML: {exc}") from exc
        if not isinstance(data, dict):
            raise ConfigError(f"{file}: top level must be a mapping, got {type(data).__name__}")
        # an emptied section (`lake:` with nothing under it) counts as present but empty
        data = {k: ({} if v is None else v) for k, v in data.items()}
        merged = deep_merge(merged, data)
        files.append(str(file.relative_to(folder.parent.parent)))
    return merged, files


def deep_merge(base: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Merge ``other`` into a copy of ``base``; nested mappings merge, everything else replaces."""
    out = dict(base)
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _env_overrides(environ: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX):].split("__") if k]
        if not keys:
            continue
        node = out
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = yaml.safe_load(raw) if raw != "" else None
    return out


def available_envs(conf_dir: Path | None = None) -> list[str]:
    conf_dir = conf_dir or PROJECT_ROOT / "conf"
    return sorted(p.name for p in conf_dir.iterdir() if p.is_dir() and p.name != "base")


def load_settings(
    env: str = "local",
    overrides: dict[str, Any] | None = None,
    conf_dir: Path | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    """Load and validate the configuration for ``env``; raise ConfigError with a one-line reason."""
    conf_dir = conf_dir or PROJECT_ROOT / "conf"
    environ = dict(os.environ) if environ is None else environ
    if not (conf_dir / env).is_dir() or env == "base":
        raise ConfigError(
            f"unknown environment {env!r}: no folder {conf_dir / env} "
            f"(known: {', '.join(available_envs(conf_dir))})"
        )
    base, base_files = _read_yaml_dir(conf_dir / "base")
    overlay, overlay_files = _read_yaml_dir(conf_dir / env)
    merged = deep_merge(base, overlay)
    merged = deep_merge(merged, _env_overrides(environ))
    if overrides:
        merged = deep_merge(merged, overrides)
    merged["env"] = env
    merged.setdefault("project_root", str(PROJECT_ROOT))
    files = ", ".join(base_files + overlay_files)
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, files)) from None


def _describe(exc: ValidationError, files: str) -> str:
    parts = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"])
        if err["type"] == "missing":
            parts.append(f"missing key '{key}'")
        elif err["type"] == "extra_forbidden":
            parts.append(f"unknown key '{key}' (mistyped?)")
        else:
            parts.append(f"key '{key}': {err['msg']} (got {err.get('input')!r})")
    return f"invalid configuration: {'; '.join(parts)} [read: {files}]"


def secret(name: str | None, what: str) -> str | None:
    """Read a secret from the environment by the variable name that config gives."""
    if not name:
        return None
    value = os.environ.get(name)
    if value is None:
        raise ConfigError(f"{what}: environment variable {name} is not set")
    return value
