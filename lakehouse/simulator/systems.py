"""Stand up the simulated source systems from the business simulation, with injected faults.

Writes, under ``simulator.output_dir``:

- ``crm/crm.db``: the CRM's change tables ``customers`` and ``subscriptions`` (one row per version,
  keyed by id + ``updated_at``) in SQLite, or the same tables in PostgreSQL when a ``postgres_url`` is
  given (pg8000). Read by the pipeline over JDBC.
- ``billing/inbox/transactions_<date>.csv``: the billing system's daily export.
- ``web/logs/date=<date>/events.jsonl``: the web/app clickstream, one JSON object per line.
- ``support/{tickets,nps}.jsonl``: the support vendor's records, served over HTTP by ``api.py``.
- ``ground_truth/``: faults injected (``faults.jsonl``), churn events, and a summary. The pipeline
  never reads these; tests compare what the pipeline caught against them.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import logging
import random
import shutil
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

from lakehouse.config import SimulatorConfig
from lakehouse.simulator.generator import BILLING_COLUMNS, BILLING_COLUMNS_V2, COUNTRIES, BusinessSimulator, DayOutput, Spilled

# From this many customer-days on, web events wait in files, not in memory (``generator.Spilled``):
# the output is the same either way (tests/unit/test_generator.py)
SPILL_FROM_CUSTOMER_DAYS = 1_000_000

log = logging.getLogger(__name__)

CUSTOMER_COLUMNS = ["customer_id", "first_name", "last_name", "email", "phone", "country", "channel",
                    "birth_year", "signup_date", "updated_at"]
SUBSCRIPTION_COLUMNS = ["subscription_id", "customer_id", "plan", "contract", "monthly_price", "status",
                        "start_date", "cancel_date", "updated_at"]
FAULT_CLASSES = ("missing", "duplicate", "out_of_range", "malformed", "late", "bad_format", "schema_change")


class FaultInjector:
    """Applies faults at configured rates from its own random stream and records each one."""

    def __init__(self, cfg: SimulatorConfig):
        self.rates = cfg.faults
        self.rng = random.Random(f"{cfg.seed}:faults")
        self.records: list[dict[str, Any]] = []

    def hit(self, kind: str) -> bool:
        return self.rng.random() < getattr(self.rates, kind)

    def note(self, source: str, day: dt.date, key: str, fault: str, detail: str = "") -> None:
        self.records.append({"source": source, "date": day.isoformat(), "key": key, "fault": fault,
                             "detail": detail})


def _day_ts(day: dt.date) -> str:
    return day.isoformat()


def generate_sources(cfg: SimulatorConfig, output_dir: Path, postgres_url: str | None = None,
                     spill: bool | None = None) -> dict[str, Any]:
    """Simulate the business and write every source system's data; return a summary. ``spill``: keep
    web events in temporary files instead of memory (default: from ``SPILL_FROM_CUSTOMER_DAYS`` on)."""
    import tempfile

    if spill is None:
        spill = cfg.customers * cfg.days >= SPILL_FROM_CUSTOMER_DAYS
    with tempfile.TemporaryDirectory(prefix="churn-sim-") as tmp:
        return _generate(cfg, output_dir, postgres_url, Path(tmp) if spill else None)


def _generate(cfg: SimulatorConfig, output_dir: Path, postgres_url: str | None, spill_dir: Path | None) -> dict[str, Any]:
    sim = BusinessSimulator(cfg, spill_dir)
    days = sim.run()
    faults = FaultInjector(cfg)
    if output_dir.exists():
        shutil.rmtree(output_dir)
    for sub in ("crm", "billing/inbox", "web/logs", "support", "ground_truth"):
        (output_dir / sub).mkdir(parents=True, exist_ok=True)

    customers, subscriptions = _crm_rows(days, faults)
    if postgres_url:
        _write_postgres(postgres_url, customers, subscriptions)
    _write_sqlite(output_dir / "crm" / "crm.db", customers, subscriptions)
    schema_day = (cfg.start_date + dt.timedelta(days=cfg.faults.schema_change_day)
                  if cfg.faults.schema_change_day is not None else None)
    billing_counts = _write_billing(days, faults, output_dir / "billing" / "inbox", schema_day)
    web_counts = _write_web(days, faults, output_dir / "web" / "logs", spill_dir)
    support_counts = _write_support(days, faults, output_dir / "support")

    churn = sorted(sim.churn_events, key=lambda e: (e[1], e[0]))
    signup = {c.customer_id: c.signup_date for c in sim.customers}
    (output_dir / "ground_truth" / "churn.csv").write_text("customer_id,churn_date,signup_date\n" + "".join(
        f"{c},{d.isoformat()},{signup[c].isoformat()}\n" for c, d in churn))
    with (output_dir / "ground_truth" / "faults.jsonl").open("w") as fh:
        for rec in faults.records:
            fh.write(json.dumps(rec, sort_keys=True) + "\n")
    active_total = sum(n for _, n in sim.active_days)
    summary = {
        "seed": cfg.seed, "start_date": cfg.start_date.isoformat(), "days": cfg.days,
        "customers": len(sim.customers), "churned": len(churn),
        # churned customer-days over active customer-days, scaled to 30 days
        "monthly_churn_rate": (len(churn) / active_total * 30) if active_total else 0.0,
        "crm_customers_rows": len(customers), "crm_subscriptions_rows": len(subscriptions),
        "billing_rows": billing_counts, "web_events": web_counts, "support": support_counts,
        "faults": dict(Counter(r["fault"] for r in faults.records)),
        "schema_change_date": schema_day.isoformat() if schema_day else None,
        "price_rise_date": sim.price_rise_day.isoformat(),
    }
    (output_dir / "ground_truth" / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True))
    log.info("simulated %d customers over %d days: %d churned (%.3f monthly), %d faults injected",
             summary["customers"], cfg.days, summary["churned"], summary["monthly_churn_rate"],
             len(faults.records))
    return summary


# ---- CRM ------------------------------------------------------------------------------------
def _crm_rows(days: list[DayOutput], faults: FaultInjector) -> tuple[list[dict], list[dict]]:
    customers, subscriptions = [], []
    for out in days:
        for row in out.customers:
            row = dict(row)
            key = f"{row['customer_id']}@{row['updated_at']}"
            if faults.hit("missing"):
                row["email"] = None
                faults.note("crm.customers", out.date, key, "missing", "email")
            elif faults.hit("out_of_range"):
                row["birth_year"] = faults.rng.choice([1890, 1899, 2031])
                faults.note("crm.customers", out.date, key, "out_of_range", "birth_year")
            elif faults.hit("bad_format"):
                if faults.rng.random() < 0.5:
                    row["email"] = "  " + row["email"].upper() + " "
                    faults.note("crm.customers", out.date, key, "bad_format", "email")
                else:
                    name = COUNTRIES[row["country"]][0]
                    row["country"] = faults.rng.choice([name, row["country"].lower()])
                    faults.note("crm.customers", out.date, key, "bad_format", "country")
            customers.append(row)
        subscriptions.extend(dict(r) for r in out.subscriptions)
    return customers, subscriptions


def _write_sqlite(path: Path, customers: list[dict], subscriptions: list[dict]) -> None:
    con = sqlite3.connect(path)
    try:
        con.executescript(_crm_ddl("TEXT"))
        con.executemany(f"INSERT INTO customers VALUES ({','.join('?' * len(CUSTOMER_COLUMNS))})",
                        [tuple(r[c] for c in CUSTOMER_COLUMNS) for r in customers])
        con.executemany(f"INSERT INTO subscriptions VALUES ({','.join('?' * len(SUBSCRIPTION_COLUMNS))})",
                        [tuple(r[c] for c in SUBSCRIPTION_COLUMNS) for r in subscriptions])
        con.commit()
    finally:
        con.close()


def _crm_ddl(ts_type: str) -> str:
    return f"""
    CREATE TABLE IF NOT EXISTS customers (
        customer_id TEXT NOT NULL, first_name TEXT, last_name TEXT, email TEXT, phone TEXT,
        country TEXT, channel TEXT, birth_year INTEGER, signup_date TEXT, updated_at {ts_type} NOT NULL,
        PRIMARY KEY (customer_id, updated_at));
    CREATE TABLE IF NOT EXISTS subscriptions (
        subscription_id TEXT NOT NULL, customer_id TEXT NOT NULL, plan TEXT, contract TEXT,
        monthly_price DOUBLE PRECISION, status TEXT, start_date TEXT, cancel_date TEXT,
        updated_at {ts_type} NOT NULL, PRIMARY KEY (subscription_id, updated_at));
    CREATE INDEX IF NOT EXISTS customers_updated ON customers (updated_at);
    CREATE INDEX IF NOT EXISTS subscriptions_updated ON subscriptions (updated_at);
    """


def _write_postgres(url: str, customers: list[dict], subscriptions: list[dict]) -> None:
    """Load the CRM tables into PostgreSQL (``postgresql://user:pw@host:port/db``) with pg8000."""
    import urllib.parse

    import pg8000.native

    u = urllib.parse.urlparse(url)
    con = pg8000.native.Connection(user=u.username or "postgres", password=u.password, host=u.hostname,
                                   port=u.port or 5432, database=u.path.lstrip("/"))
    try:
        con.run("DROP TABLE IF EXISTS customers; DROP TABLE IF EXISTS subscriptions")
        for stmt in _crm_ddl("TEXT").split(";"):
            if stmt.strip():
                con.run(stmt)
        for table, cols, rows in (("customers", CUSTOMER_COLUMNS, customers),
                                  ("subscriptions", SUBSCRIPTION_COLUMNS, subscriptions)):
            buf = io.StringIO()
            w = csv.writer(buf)
            for r in rows:
                w.writerow(["\\N" if r[c] is None else r[c] for c in cols])
            buf.seek(0)
            con.run(f"COPY {table} ({','.join(cols)}) FROM STDIN WITH (FORMAT csv, NULL '\\N')", stream=buf)
    finally:
        con.close()


# ---- billing CSV --------------------------------------------------------------------------------
def _deliveries(days: list[DayOutput], attr: str, faults: FaultInjector, source: str,
                key_field: str, spill_dir: Path | None = None) -> dict[dt.date, list[dict] | Spilled]:
    """Assign each record to the date its file is delivered; late records slip 1-3 days. With
    ``spill_dir`` each delivery date's records go to a file there (the same records, in the same order)."""
    by_day: dict[dt.date, list[dict] | Spilled] = {
        out.date: Spilled(spill_dir / f"{attr}-delivered-{out.date.isoformat()}.pkl") if spill_dir else []
        for out in days}
    last = days[-1].date if days else None
    for out in days:
        batch: dict[dt.date, list[dict]] = {}
        for rec in getattr(out, attr):
            target = out.date
            if faults.hit("late"):
                slipped = out.date + dt.timedelta(days=faults.rng.randint(1, 3))
                if last and slipped <= last:
                    target = slipped
                    faults.note(source, slipped, rec[key_field], "late", f"event date {out.date}")
            batch.setdefault(target, []).append(dict(rec))
        for target, recs in batch.items():  # a source date's records keep their order within each target
            by_day[target].extend(recs)
    return by_day


def _write_billing(days: list[DayOutput], faults: FaultInjector, inbox: Path,
                   schema_day: dt.date | None) -> int:
    total = 0
    for day, rows in _deliveries(days, "transactions", faults, "billing", "transaction_id").items():
        columns = BILLING_COLUMNS_V2 if schema_day and day >= schema_day else BILLING_COLUMNS
        if schema_day and day == schema_day:
            faults.note("billing", day, f"transactions_{day}.csv", "schema_change", "tax_amount column added")
        buf = io.StringIO(newline="")
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(columns)
        for row in rows:
            key = row["transaction_id"]
            if faults.hit("missing"):
                row["amount"] = None
                faults.note("billing", day, key, "missing", "amount")
            elif faults.hit("out_of_range"):
                row["amount"] = -abs(row["amount"] or 1.0)
                faults.note("billing", day, key, "out_of_range", "amount")
            elif faults.hit("bad_format"):
                if faults.rng.random() < 0.5:
                    t = dt.datetime.strptime(row["billed_at"], "%Y-%m-%dT%H:%M:%SZ")
                    row["billed_at"] = t.strftime("%d/%m/%Y %H:%M")
                    faults.note("billing", day, key, "bad_format", "billed_at")
                else:
                    row["currency"] = row["currency"].lower()
                    faults.note("billing", day, key, "bad_format", "currency")
            values = ["" if row[c] is None else row[c] for c in columns]
            if faults.hit("malformed"):
                line = ",".join(str(v) for v in values[:3]) + ',"' + str(values[3])  # cut mid-field
                buf.write(line + "\n")
                faults.note("billing", day, key, "malformed", "truncated line")
                total += 1
                continue
            w.writerow(values)
            total += 1
            if faults.hit("duplicate"):
                w.writerow(values)
                faults.note("billing", day, key, "duplicate")
                total += 1
        (inbox / f"transactions_{day.isoformat()}.csv").write_text(buf.getvalue())
    return total


# ---- web logs -----------------------------------------------------------------------------------
def _write_web(days: list[DayOutput], faults: FaultInjector, root: Path, spill_dir: Path | None = None) -> int:
    total = 0
    for day, events in _deliveries(days, "events", faults, "web", "event_id", spill_dir).items():
        folder = root / f"date={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "events.jsonl").open("w") as fh:
            for ev in events:
                key = ev["event_id"]
                if faults.hit("missing"):
                    ev["customer_id"] = None
                    faults.note("web", day, key, "missing", "customer_id")
                elif faults.hit("out_of_range"):
                    ev["ts"] = "2099" + ev["ts"][4:]
                    faults.note("web", day, key, "out_of_range", "ts")
                elif faults.hit("bad_format"):
                    t = dt.datetime.strptime(ev["ts"], "%Y-%m-%dT%H:%M:%SZ")
                    ev["ts"] = t.strftime("%Y/%m/%d %H:%M:%S")
                    faults.note("web", day, key, "bad_format", "ts")
                line = json.dumps(ev, separators=(",", ":"))
                if faults.hit("malformed"):
                    line = line[: len(line) // 2]
                    faults.note("web", day, key, "malformed", "truncated JSON")
                fh.write(line + "\n")
                total += 1
                if faults.hit("duplicate"):
                    fh.write(line + "\n")
                    faults.note("web", day, key, "duplicate")
                    total += 1
    return total


# ---- support vendor -----------------------------------------------------------------------------
def _write_support(days: list[DayOutput], faults: FaultInjector, root: Path) -> dict[str, int]:
    counts = {}
    for attr, key_field in (("tickets", "ticket_id"), ("nps", "response_id")):
        source = f"support_api.{attr}"
        n = 0
        with (root / f"{attr}.jsonl").open("w") as fh:
            for day, recs in _deliveries(days, attr, faults, source, key_field).items():
                for rec in recs:
                    key = rec[key_field]
                    if attr == "tickets" and rec["status"] == "resolved":
                        key = f"{key}@resolved"
                    if faults.hit("missing"):
                        rec["customer_id"] = None
                        faults.note(source, day, key, "missing", "customer_id")
                    elif attr == "nps" and faults.hit("out_of_range"):
                        rec["score"] = faults.rng.randint(11, 15)
                        faults.note(source, day, key, "out_of_range", "score")
                    elif faults.hit("bad_format"):
                        field = "created_at" if attr == "tickets" else "submitted_at"
                        t = dt.datetime.strptime(rec[field], "%Y-%m-%dT%H:%M:%SZ")
                        rec[field] = t.strftime("%d/%m/%Y %H:%M")
                        faults.note(source, day, key, "bad_format", field)
                    rec["_delivered_on"] = day.isoformat()
                    fh.write(json.dumps(rec, sort_keys=True) + "\n")
                    n += 1
                    if faults.hit("duplicate"):
                        fh.write(json.dumps(rec, sort_keys=True) + "\n")
                        faults.note(source, day, key, "duplicate")
                        n += 1
        counts[attr] = n
    return counts


def tree_checksum(root: Path, exclude: Iterable[str] = ()) -> str:
    """SHA-256 over every file's relative path and bytes (SQLite files by their table contents)."""
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if any(rel.startswith(e) for e in exclude):
            continue
        h.update(rel.encode())
        if path.suffix == ".db":
            con = sqlite3.connect(path)
            for table in ("customers", "subscriptions"):
                for row in con.execute(f"SELECT * FROM {table} ORDER BY 1, updated_at"):
                    h.update(repr(row).encode())
            con.close()
        else:
            h.update(path.read_bytes())
    return h.hexdigest()
