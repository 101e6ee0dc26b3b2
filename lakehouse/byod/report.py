"""Reports of a profile run: the data-quality findings and the model report (Markdown + JSON).

Written to the run's output folder (default ``var/byod/<profile>/date=D``), copied into the lake
under ``reports/byod/<profile>/date=D`` and logged with the MLflow run.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from lakehouse.byod.profile import Profile
from lakehouse.config import Settings


def _table(rows: list[dict], keys: list[str]) -> list[str]:
    if not rows:
        return ["(none)"]
    out = ["| " + " | ".join(keys) + " |", "|---" * len(keys) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(r.get(k, "")).replace("|", "\\|") for k in keys) + " |")
    return out


def write_quality(out_dir: Path, profile: Profile, file: Path, sha: str, run_date: dt.date, rows: dict,
                  found: list[dict], rule_rows: list[dict], suggested: list[dict], failures: list[str]) -> Path:
    lines = [f"# Data quality: profile `{profile.name}` on `{file.name}`", "",
             f"- Run date {run_date}; file sha256 `{sha[:16]}...`",
             f"- Lines {rows['lines']} = silver {rows['silver']} + quarantined {rows['quarantined']} + exact "
             f"duplicates {rows['duplicates_removed']} + superseded {rows['superseded']}",
             f"- Result: {'FAILED: ' + '; '.join(failures) if failures else 'passed'}", "",
             "## Problems found and what was done", "", *_table(found, ["column", "rows", "problem", "action"]), "",
             "## Rules checked (Deequ)", "",
             *_table(rule_rows, ["rule", "kind", "severity", "status", "metric", "threshold", "failing_rows"]), "",
             "## Rules Deequ suggests from the data", "",
             "Candidates for the profile's `checks:` (review before adopting: they describe this file, "
             "not necessarily the business).", "",
             *_table(suggested, ["column", "suggestion", "deequ"]), ""]
    path = out_dir / "quality_report.md"
    path.write_text("\n".join(lines))
    (out_dir / "quality_findings.json").write_text(json.dumps(
        {"rows": rows, "findings": found, "rules": rule_rows, "suggestions": suggested, "failures": failures},
        indent=2, default=str))
    return path


def write_model_report(out_dir: Path, profile: Profile, result, numeric: list[str]) -> Path:
    from lakehouse.ml.train import metrics_table

    s = result.split
    r = s["rows"]
    where = (f"train on {s['train_dates']}, evaluate on {s['eval_dates']}" if s["method"] == "out_of_time"
             else f"{s['method']}, test fraction {s['test_fraction']}")
    label = (f"`{profile.label.column}` in {profile.label.churned}" if profile.shape == "snapshot" else
             f"no event within {profile.events.horizon_days} days after the cutoff")
    lines = [f"# Model report: profile `{profile.name}` ({profile.shape})", "",
             f"- File `{Path(result.file).name}` (sha256 `{result.sha256[:16]}...`), run date {result.run_date}, "
             f"run `{result.run_id}`",
             f"- Rows: {result.rows['lines']} lines -> {result.rows['silver']} in silver "
             f"({result.rows['quarantined']} quarantined, {result.rows['duplicates_removed']} duplicates removed); "
             f"see quality_report.md",
             f"- Label: churned = {label}",
             f"- Features: numeric {numeric}; categorical {profile.categorical_columns}",
             f"- Evaluation: {where}; train {r['train']} rows ({r['train_positives']} churned), evaluation "
             f"{r['eval']} rows ({r['eval_positives']} churned); positive class weight {s['positive_class_weight']}",
             f"- Table versions: {result.table_versions}", "",
             "ROC and PR AUC are computed from predicted probabilities on the evaluation rows; the threshold "
             "maximizes expected value under the configured costs (model.costs).", "",
             *metrics_table(result.metrics, result.best), "",
             f"Best: **{result.best}** (ROC AUC {result.metrics[result.best]['roc_auc']:.4f}), registered in MLflow as "
             f"`{profile.table}` version {result.registered} (run `{result.mlflow_run_id}`).", "",
             "| algorithm | CV ROC AUC (train) | fit seconds |", "|---|---|---|",
             *[f"| {a} | {m['cv_roc_auc']:.4f} | {m['fit_seconds']} |" for a, m in result.metrics.items()], "",
             "## Plots of the best model", "",
             *[f"![{n}](plots/{result.best}/{n}.png)" for n in
               ("roc", "pr", "calibration", "confusion_matrix", "feature_importance")], ""]
    path = out_dir / "model_report.md"
    path.write_text("\n".join(lines))
    (out_dir / "result.json").write_text(json.dumps(result.as_dict(), indent=2, default=str))
    return path


def publish(settings: Settings, profile: Profile, run_date: dt.date, out_dir: Path, run_id: str) -> None:
    """Copy the reports into the lake and log them with the MLflow parent run."""
    from lakehouse.ml import tracking
    from lakehouse.storage import storage_for

    files = {p.name: p.read_bytes() for p in out_dir.iterdir() if p.is_file()}
    storage_for(settings).replace_dir(f"reports/byod/{profile.name}/date={run_date.isoformat()}", files, run_id)
    result = json.loads((out_dir / "result.json").read_text())
    client = tracking.client(settings)
    for name in ("model_report.md", "quality_report.md", "quality_findings.json"):
        client.log_artifact(result["mlflow_run_id"], str(out_dir / name))
