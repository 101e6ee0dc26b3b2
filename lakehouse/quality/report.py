"""The data-quality report of one run: a CSV (one row per rule) and a readable HTML page.

The HTML has the run's summary per table (rows in, to silver, quarantined, duplicates, fixed, gate),
failed and warning rules, trend charts of the metrics over every date recorded so far (matplotlib),
the rules that failed most rows, and samples of quarantined rows. Files land in the lake under
``reports/quality/date=<D>/`` (local or HDFS), next to the data they describe.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import io
import logging

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

from lakehouse import delta_io, tables  # noqa: E402
from lakehouse.config import Settings  # noqa: E402
from lakehouse.storage import storage_for  # noqa: E402

log = logging.getLogger(__name__)
CSV_FIELDS = ["table", "rule", "kind", "severity", "status", "metric", "threshold", "failing_rows", "resolution"]


def rules_csv(outcomes) -> bytes:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for o in outcomes:
        for r in o.rule_rows:
            w.writerow({"table": o.table, **{k: r.get(k) for k in CSV_FIELDS if k != "table"}})
    return buf.getvalue().encode()


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def trend_charts(spark: SparkSession, settings: Settings, run_date: dt.date) -> dict[str, bytes]:
    uri = tables.RECONCILIATION.uri(settings)
    if not delta_io.is_delta(spark, uri):
        return {}
    hist = (delta_io.read(spark, uri).where(F.col("run_date") <= F.lit(run_date.isoformat()).cast("date"))
            .orderBy("run_date").toPandas())
    if hist.empty:
        return {}
    hist["run_date"] = hist["run_date"].astype("datetime64[ns]")
    hist["quarantine_rate"] = hist["quarantined"] / hist["bronze_rows"].where(hist["bronze_rows"] > 0)
    charts = {}
    for metric, title, ylabel in (("quarantine_rate", "Share of rows quarantined", "share of bronze rows"),
                                  ("bronze_rows", "Rows received per date", "rows"),
                                  ("duplicates_removed", "Duplicates removed per date", "rows")):
        fig, ax = plt.subplots(figsize=(7, 3.2))
        for table, part in hist.groupby("table"):
            ax.plot(part["run_date"], part[metric], marker="o", ms=3, label=table)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        if metric == "bronze_rows":
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=3)
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=10))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))
        fig.autofmt_xdate()
        charts[f"trend_{metric}.png"] = _png(fig)
    return charts


def quarantine_samples(spark: SparkSession, settings: Settings, outcomes, run_date: dt.date, n: int = 5):
    from lakehouse.quality.rules import load_rules

    rules = load_rules()
    samples = {}
    for o in outcomes:
        spec = rules[o.table]
        uri = tables.quarantine(spec.source).uri(settings)
        if not o.quarantined or not delta_io.is_delta(spark, uri):
            continue
        rows = (delta_io.read(spark, uri)
                .where((F.col("_ingest_date") == F.lit(run_date.isoformat()).cast("date")) & (F.col("table") == o.table))
                .orderBy("_source_file", "_line").limit(n)
                .select("rule", "reason_code", "_source_file", "_line", F.coalesce("_raw_record", "_original").alias("record"))
                .collect())
        samples[o.table] = rows
    return samples


def render_html(run_date: dt.date, run_id: str, outcomes, charts: dict[str, bytes], samples) -> bytes:
    esc = html.escape
    failed = [f for o in outcomes for f in o.failures]
    warned = [w for o in outcomes for w in o.warnings]
    status = "FAILED" if failed else "passed"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>Data quality {run_date}</title>",
             "<style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;"
             "margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px}th{background:#f3f3f3}"
             ".fail{color:#b00020;font-weight:bold}.ok{color:#1b7a1b}.warn{color:#a66400}"
             "code{font-size:12px;word-break:break-all}</style></head><body>",
             f"<h1>Data-quality report, {run_date}</h1>",
             f"<p>Run <code>{esc(run_id)}</code>. Gate: <span class='{'fail' if failed else 'ok'}'>{status}</span>. "
             f"{len(failed)} error-level failure(s), {len(warned)} warning(s).</p>",
             "<h2>Summary</h2><table><tr><th>table</th><th>rows in (bronze)</th><th>to silver</th><th>quarantined</th>"
             "<th>duplicates removed</th><th>superseded</th><th>rows fixed</th><th>reconciled</th><th>gate</th></tr>"]
    for o in outcomes:
        parts.append(f"<tr><td>{esc(o.table)}</td><td>{o.bronze_rows}</td><td>{o.silver_rows}</td><td>{o.quarantined}</td>"
                     f"<td>{o.duplicates_removed}</td><td>{o.superseded}</td><td>{o.fixed_rows}</td>"
                     f"<td>{'yes' if o.balanced else 'NO'}</td>"
                     f"<td class='{'ok' if o.passed else 'fail'}'>{'passed' if o.passed else 'failed'}</td></tr>")
    parts.append("</table>")
    if failed:
        parts.append("<h2 class='fail'>Failed (error level)</h2><ul>" + "".join(f"<li>{esc(f)}</li>" for f in failed) + "</ul>")
    if warned:
        parts.append("<h2 class='warn'>Warnings</h2><ul>" + "".join(f"<li>{esc(w)}</li>" for w in warned) + "</ul>")
    if charts:
        parts.append("<h2>Trends over runs</h2>")
        for name, data in charts.items():
            parts.append(f"<img alt='{esc(name)}' src='data:image/png;base64,{base64.b64encode(data).decode()}'><br>")
    top = sorted(((o.table, r) for o in outcomes for r in o.rule_rows if r["failing_rows"]),
                 key=lambda tr: -tr[1]["failing_rows"])[:15]
    parts.append("<h2>Rules with the most failing rows</h2><table><tr><th>table</th><th>rule</th><th>severity</th>"
                 "<th>status</th><th>failing rows</th><th>metric</th><th>threshold</th><th>resolution</th></tr>")
    for table, r in top:
        metric = "" if r["metric"] is None else f"{r['metric']:.4f}"
        cls = "ok" if r["status"] in ("Success", "Skipped") else ("fail" if r["severity"] == "error" else "warn")
        parts.append(f"<tr><td>{esc(table)}</td><td>{esc(r['rule'])}</td><td>{r['severity']}</td>"
                     f"<td class='{cls}'>{r['status']}</td><td>{r['failing_rows']}</td><td>{metric}</td>"
                     f"<td>{esc(r['threshold'])}</td><td>{r['resolution']}</td></tr>")
    parts.append("</table>")
    if samples:
        parts.append("<h2>Samples of quarantined rows</h2>")
        for table, rows in samples.items():
            parts.append(f"<h3>{esc(table)}</h3><table><tr><th>rule</th><th>reason</th><th>file:line</th><th>record</th></tr>")
            for row in rows:
                parts.append(f"<tr><td>{esc(row['rule'])}</td><td>{row['reason_code']}</td>"
                             f"<td>{esc(str(row['_source_file']))}:{row['_line']}</td><td><code>{esc(str(row['record'])[:300])}</code></td></tr>")
            parts.append("</table>")
    parts.append("<p>Rules and what the pipeline does about each: docs/data-quality.md.</p></body></html>")
    return "".join(parts).encode()


def write_report(spark: SparkSession, settings: Settings, run_date: dt.date, run_id: str, outcomes) -> str:
    """Write the report files into ``<lake>/reports/quality/date=<D>/``; return that folder's URI."""
    charts = trend_charts(spark, settings, run_date)
    files = {"quality.csv": rules_csv(outcomes),
             "report.html": render_html(run_date, run_id, outcomes, charts,
                                        quarantine_samples(spark, settings, outcomes, run_date))}
    files.update(charts)
    storage = storage_for(settings)
    rel = f"reports/quality/date={run_date.isoformat()}"
    storage.replace_dir(rel, files, tmp_tag=run_id)
    log.info("quality report for %s: %s", run_date, storage.join(rel))
    return storage.join(rel)
