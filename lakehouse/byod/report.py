"""Reports of a profile run: the data-quality findings and the model report (Markdown + JSON).

Written to the run's output folder (default ``var/byod/<profile>/date=D``), copied into the lake
under ``reports/byod/<profile>/date=D`` and logged with the MLflow run.
"""

from __future__ import annotations

import datetime as dt
import json
import math
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


def _kind(name: str) -> str:
    from lakehouse.byod.modeling import PRIOR

    return "prior" if name == PRIOR else "plain baseline" if name.startswith("plain_") else "tuned"


def _num(v, fmt: str = ".4f") -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def comparison(metrics: dict, best: str) -> list[str]:
    """One row per model: tuned, plain baselines, prior; ROC AUC with its bootstrap interval."""
    out = ["| model | kind | ROC AUC [95% interval] | PR AUC | Brier | lift top 10% | threshold | contacted | "
           "expected value | CV ROC AUC |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, m in metrics.items():
        mark = " **(registered)**" if name == best else ""
        out.append(f"| {name}{mark} | {_kind(name)} | {_num(m['roc_auc'])} [{_num(m.get('roc_auc_low'))}, "
                   f"{_num(m.get('roc_auc_high'))}] | {_num(m['pr_auc'])} | {_num(m['brier'])} | "
                   f"{_num(m['lift_top_decile'], '.2f')} | {_num(m['threshold'], '.3f')} | {m['contacted']} of {m['rows']} | "
                   f"{_num(m['expected_value'], '.1f')} | {_num(m.get('cv_roc_auc'))} |")
    return out


def tuned_vs_plain(metrics: dict) -> list[str]:
    from lakehouse.byod.modeling import plain_name

    out = []
    for name, m in metrics.items():
        plain = metrics.get(plain_name(name))
        if plain is not None:
            d = m["roc_auc"] - plain["roc_auc"]
            out.append(f"- {name}: tuned {m['roc_auc']:.4f} vs plain {plain['roc_auc']:.4f} ({d:+.4f})")
    return out


def write_model_report(out_dir: Path, profile: Profile, result, numeric: list[str]) -> Path:
    from lakehouse.byod.modeling import PRIOR

    s = result.split
    r = s["rows"]
    notes = s.get("modeling", {})
    where = (f"train on {s['train_dates']}, evaluate on {s['eval_dates']}" if s["method"] == "out_of_time"
             else f"{s['method']}, test fraction {s['test_fraction']}")
    label = (f"`{profile.label.column}` in {profile.label.churned}" if profile.shape == "snapshot" else
             f"no event within {profile.events.horizon_days} days after the cutoff")
    best = result.metrics[result.best]
    prior = result.metrics.get(PRIOR, {})
    b = profile.business
    rule = (f"contacts the {b.target_contact_rate:.0%} of customers with the highest scores"
            if b is not None and b.target_contact_rate is not None else
            "maximizes the expected value on the evaluation rows: churners contacted x offer success x value of a "
            "saved customer - contacts x cost of a contact (when no threshold pays, nobody is contacted)")
    lines = [f"# Model report: profile `{profile.name}` ({profile.shape})", "",
             f"- File `{Path(result.file).name}` (sha256 `{result.sha256[:16]}...`), run date {result.run_date}, "
             f"run `{result.run_id}`",
             f"- Rows: {result.rows['lines']} lines -> {result.rows['silver']} in silver "
             f"({result.rows['quarantined']} quarantined, {result.rows['duplicates_removed']} duplicates removed); "
             f"see quality_report.md",
             f"- Label: churned = {label}",
             f"- Features: numeric {numeric}; categorical {profile.categorical_columns}",
             f"- Evaluation: {where}; train {r['train']} rows ({r['train_positives']} churned), evaluation "
             f"{r['eval']} rows ({r['eval_positives']} churned); class weight {s.get('class_weight', 'balanced')} "
             f"(positive class weight {s['positive_class_weight']})",
             f"- Table versions: {result.table_versions}", "",
             "## Models", "",
             "Every run trains each algorithm tuned (cross-validation over `model.grid` plus the plain settings"
             + (", large candidates only up to "
                f"{notes.get('large_candidates_max_rows')} training rows" if notes else "")
             + "), each algorithm's plain baseline (fixed settings, untuned) and the prior (every row scored "
             "with the training churn rate). ROC AUC is computed from probabilities on the evaluation rows, "
             "with a 95% bootstrap interval (500 resamples of those rows)."
             + (f" Cross-validation compared the candidates on {notes['cv_rows']} of the {r['train']} training rows "
                f"(a sample stratified by label, fraction {notes['cv_fraction']}; `model.max_cv_rows` is "
                f"{notes['max_cv_rows']}); the chosen candidate was then fitted on every training row."
                if notes.get("cv_rows") else ""), "",
             *comparison(result.metrics, result.best), "",
             *tuned_vs_plain(result.metrics), "",
             f"Registered: **{result.best}** (ROC AUC {best['roc_auc']:.4f}) in MLflow as `{profile.table}` version "
             f"{result.registered} (run `{result.mlflow_run_id}`).", ""]
    if notes.get("skipped"):
        lines += [f"Not tuned (time budget of {profile.training.time_budget_minutes} minutes spent): "
                  f"{notes['skipped']}.", ""]
    lines += ["## Calibration", "",
              f"Brier score of the registered model {best['brier']:.4f}; of the prior {_num(prior.get('brier'))} "
              "(lower is better). "
              + ("Rows weigh the same in training, so a score reads as a churn probability; the calibration plot "
                 "compares scores with observed churn." if s.get("class_weight") == "none" else
                 "Churners were up-weighted in training, which inflates scores: read them as a ranking, not as "
                 "probabilities."), "",
              "## Decision threshold", "",
              f"Costs from {notes.get('threshold_source', 'conf model.costs')}. The threshold {rule}. For the "
              f"registered model: threshold {best['threshold']:.3f}, {best['contacted']} of {best['rows']} evaluation "
              f"customers contacted, precision {best['precision']:.3f}, recall {best['recall']:.3f}, expected value "
              f"{_num(best['expected_value'], '.1f')}.", "",
              "The self-contained report.html shows every model's curves and calibration.", ""]
    path = out_dir / "model_report.md"
    path.write_text("\n".join(lines))
    (out_dir / "result.json").write_text(json.dumps(result.as_dict(), indent=2, default=str))
    return path


def column_profile(frame, profile: Profile, top: int = 3) -> list[dict]:
    """Per column of the silver rows: missing values, distinct values (approximate), and the range and
    median of numbers or the most frequent values of text; one aggregation plus one per text feature."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import NumericType

    cols = [f for f in frame.schema.fields if not f.name.startswith("_")]
    if not cols:
        return []
    aggs = [F.count(F.lit(1)).alias("__n")]
    for f in cols:
        c = F.col(f"`{f.name}`")
        aggs += [F.sum(c.isNull().cast("int")).alias(f"{f.name}__missing"),
                 F.approx_count_distinct(c).alias(f"{f.name}__distinct")]
        if isinstance(f.dataType, NumericType):
            aggs += [F.min(c).alias(f"{f.name}__min"), F.percentile_approx(c, 0.5).alias(f"{f.name}__median"),
                     F.max(c).alias(f"{f.name}__max")]
    row = frame.agg(*aggs).first().asDict()
    n = row["__n"] or 0
    from lakehouse.byod.profile import normalize

    text = set(profile.categorical_columns) | ({normalize(profile.label.column)} if profile.label else set())
    out = []
    for f in cols:
        entry = {"column": f.name, "type": f.dataType.simpleString(), "missing": row[f"{f.name}__missing"],
                 "missing_share": f"{row[f'{f.name}__missing'] / n:.1%}" if n else "-",
                 "distinct": row[f"{f.name}__distinct"], "summary": ""}
        if isinstance(f.dataType, NumericType):
            entry["summary"] = (f"min {row[f'{f.name}__min']}, median {row[f'{f.name}__median']}, "
                                f"max {row[f'{f.name}__max']}")
        elif f.name in text:
            values = frame.groupBy(f"`{f.name}`").count().orderBy(F.col("count").desc()).limit(top).collect()
            entry["summary"] = ", ".join(f"{v[0]!s} ({v[1] / n:.0%})" for v in values) if n else ""
        out.append(entry)
    return out


def quarantine_samples(quarantine, profile: Profile, limit: int = 10) -> list[dict]:
    """The first quarantined lines: line number, rule, reason and the row as it came, personal data
    masked."""
    from lakehouse.byod.profile import normalize

    pii = {normalize(c) for c in profile.pii}
    out = []
    for r in quarantine.select("_line", "rule", "reason_code", "_original").orderBy("_line").limit(limit).collect():
        try:
            original = json.loads(r["_original"] or "{}")
        except ValueError:
            original = {"_original": r["_original"]}
        shown = {k: ("<personal data>" if normalize(k) in pii else v) for k, v in original.items()}
        out.append({"line": r["_line"], "rule": r["rule"], "reason": r["reason_code"],
                    "row": json.dumps(shown, default=str)[:300]})
    return out


def write_html(out_dir: Path, profile: Profile, result, columns: list[dict], samples: list[dict]) -> Path:
    """``report.html``: the quality and model reports, the per-column profile, quarantine samples with
    line numbers and every model's plots, images embedded, so the file reads the same anywhere (the
    lake's copy, an MLflow artifact, a mail attachment)."""
    import base64
    import html

    from markdown_it import MarkdownIt

    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    parts = [md.render((out_dir / "model_report.md").read_text()),
             "<h2>Columns (silver)</h2>", md.render("\n".join(_table(columns, ["column", "type", "missing",
                                                                         "missing_share", "distinct", "summary"]))),
             "<h2>Quarantined lines (first 10)</h2>",
             md.render("\n".join(_table(samples, ["line", "rule", "reason", "row"]))),
             md.render((out_dir / "quality_report.md").read_text()), "<h2>Curves of every model</h2>"]
    plots = out_dir / "plots"
    for name in result.metrics:
        folder = plots / name
        if not folder.is_dir():
            continue
        parts.append(f"<h3>{html.escape(name)}</h3><div class='plots'>")
        for kind in ("roc", "pr", "calibration", "confusion_matrix", "feature_importance"):
            png = folder / f"{kind}.png"
            if png.exists():
                data = base64.b64encode(png.read_bytes()).decode()
                parts.append(f"<img alt='{html.escape(name)} {kind}' src='data:image/png;base64,{data}'>")
        parts.append("</div>")
    page = ("<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(profile.name)}: bring-your-own-data report</title><style>"
            "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
            "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:2px 6px}"
            ".plots img{width:32%;margin:2px}</style></head><body>" + "\n".join(parts) + "</body></html>")
    path = out_dir / "report.html"
    path.write_text(page)
    return path


def publish(settings: Settings, profile: Profile, run_date: dt.date, out_dir: Path, run_id: str) -> None:
    """Copy the reports into the lake and log them with the MLflow parent run."""
    from lakehouse.ml import tracking
    from lakehouse.storage import storage_for

    files = {p.name: p.read_bytes() for p in out_dir.iterdir() if p.is_file()}
    storage_for(settings).replace_dir(f"reports/byod/{profile.name}/date={run_date.isoformat()}", files, run_id)
    result = json.loads((out_dir / "result.json").read_text())
    client = tracking.client(settings)
    for name in ("model_report.md", "quality_report.md", "quality_findings.json", "report.html"):
        client.log_artifact(result["mlflow_run_id"], str(out_dir / name))
