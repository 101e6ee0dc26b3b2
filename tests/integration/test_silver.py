"""PyDeequ validation into silver against the generator's ground truth, on real Delta tables."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from pyspark.sql import functions as F

from lakehouse import delta_io, tables
from lakehouse.ingest.stage import ingest_source
from lakehouse.quality.rules import load_rules
from lakehouse.quality.transform import annotate, latest, split
from lakehouse.silver.stage import QualityGateError, validate_and_report
from lakehouse.simulator.systems import generate_sources
from lakehouse.storage import storage_for
from tests.conftest import SOURCES, make_settings

RULES = load_rules()
# ground-truth source name -> silver table, and how a fault's key is found in a row
TRUTH_TABLES = {"crm.customers": "customers", "billing": "transactions", "web": "web_events",
                "support_api.tickets": "support_tickets", "support_api.nps": "nps_responses"}
KEY_OF = {
    "customers": lambda r: f"{r['customer_id']}@{r['_raw_updated_at']}",
    "transactions": lambda r: r["transaction_id"],
    "web_events": lambda r: r["event_id"],
    "support_tickets": lambda r: r["ticket_id"] + ("@resolved" if r["status"] == "resolved" else ""),
    "nps_responses": lambda r: r["response_id"],
}


@pytest.fixture(scope="module")
def validated(spark, lake, ingested):
    settings, dates = lake
    return {d: validate_and_report(spark, settings, d) for d in dates}


def test_reconciliation_holds_for_three_dates(spark, lake, validated):
    settings, dates = lake
    recon = delta_io.read(spark, tables.RECONCILIATION.uri(settings)).collect()
    assert {(r.table, str(r.run_date)) for r in recon} == {(t, str(d)) for t in RULES for d in dates}
    for day, result in validated.items():
        for o in result.tables:
            assert o.balanced and o.passed, o
            bronze = delta_io.read(spark, tables.bronze(RULES[o.table].bronze).uri(settings)).where(
                F.col("_ingest_date") == F.lit(str(day)).cast("date")).count()
            quarantine = delta_io.read(spark, tables.quarantine(RULES[o.table].source).uri(settings)).where(
                (F.col("_ingest_date") == F.lit(str(day)).cast("date")) & (F.col("table") == o.table)).count()
            assert bronze == o.bronze_rows
            assert quarantine == o.quarantined
            assert bronze == o.silver_rows + quarantine + o.duplicates_removed + o.superseded
    for table, spec in RULES.items():
        silver = delta_io.read(spark, tables.silver(table).uri(settings))
        assert silver.count() == silver.select(*spec.key).distinct().count(), f"{table} keys not unique"
    assert sum(o.quarantined for r in validated.values() for o in r.tables) > 0


def _annotated_rows(spark, settings, table, day):
    spec = RULES[table]
    bronze = delta_io.read(spark, tables.bronze(spec.bronze).uri(settings)).where(
        F.col("_ingest_date") == F.lit(str(day)).cast("date"))
    refs = {r.name: delta_io.read(spark, tables.silver(r.table).uri(settings)).select(r.column)
            for r in spec.rules if r.check == "references"}
    ann = annotate(bronze, spec, day, refs)
    kept, _ = split(ann, spec)
    kept_keys = Counter(KEY_OF[table](r.asDict()) for r in latest(kept, spec).collect())
    return ann.collect(), kept_keys


def test_every_injected_fault_class_is_caught(spark, lake, validated, generated_sources):
    """Recall per fault class against the generator's ground truth, over three dates."""
    settings, dates = lake
    out, _ = generated_sources
    truth = [json.loads(x) for x in (out / "ground_truth" / "faults.jsonl").read_text().splitlines()]
    days = {str(d) for d in dates}
    truth = [f for f in truth if f["date"] in days and f["source"] in TRUTH_TABLES]
    caught, total = Counter(), Counter()
    missed = []
    for table in TRUTH_TABLES.values():
        for day in dates:
            rows, kept_keys = _annotated_rows(spark, settings, table, day)
            by_key = defaultdict(list)
            unparsed = [r for r in rows if r["_parse_error"] is not None]
            for r in rows:
                if r["_parse_error"] is None:
                    by_key[KEY_OF[table](r.asDict())].append(r)
            for f in (f for f in truth if TRUTH_TABLES[f["source"]] == table and f["date"] == str(day)):
                total[f["fault"]] += 1
                hits = by_key.get(f["key"], [])
                rules_hit = {v["rule"] for r in hits for v in r["_violations"]}
                fixes = {x for r in hits for x in r["_fixes"]}
                quarantined = any(r["_quarantine_reason"] is not None for r in hits)
                if f["fault"] == "malformed":
                    ok = any(f["key"].split("@")[0] in (r["_raw_record"] or "") for r in unparsed)
                elif f["fault"] in ("missing", "out_of_range"):
                    ok = quarantined
                elif f["fault"] == "bad_format":
                    ok = f"format:{f['detail']}" in fixes or quarantined
                elif f["fault"] == "late":
                    # flagged late; or caught anyway because another fault on the same record (a 2099
                    # time, a truncated line) quarantined it and its event time cannot be trusted
                    ok = any(rule.endswith("_on_time") for rule in rules_hit) or quarantined or not hits and any(
                        f["key"] in (r["_raw_record"] or "") for r in unparsed)
                elif f["fault"] == "duplicate":
                    ok = len(hits) >= 2 and (kept_keys[f["key"]] == 1 or quarantined)
                else:
                    continue
                caught[f["fault"]] += ok
                if not ok:
                    missed.append((f, [r.asDict() for r in hits][:2]))
    recall = {k: caught[k] / total[k] for k in total}
    print("recall per fault class:", {k: f"{v:.3f} ({caught[k]}/{total[k]})" for k, v in recall.items()})
    assert set(total) >= {"missing", "duplicate", "out_of_range", "malformed", "late", "bad_format"}
    assert all(v >= 0.95 for v in recall.values()), (recall, missed[:5])


def test_rerun_of_a_date_changes_no_silver_content_or_version(spark, lake, validated):
    settings, dates = lake
    names = [*RULES, *[f"{t}_history" for t, r in RULES.items() if r.write_mode != "insert_only"],
             *[f"quarantine_{s}" for s in {r.source for r in RULES.values()}]]

    def state():
        return {n: (delta_io.latest_version(spark, tables.silver(n).uri(settings)),
                    delta_io.content_checksum(delta_io.read(spark, tables.silver(n).uri(settings)), ["_run_id"]))
                for n in names}

    before = state()
    assert all(v is not None for v, _ in before.values()), before
    rerun = validate_and_report(spark, settings, dates[1])
    # the same rows again: nothing rewritten, so no table gets a new version either
    assert state() == before
    assert sum(o.quarantined for o in rerun.tables) > 0  # the quarantine slices were compared, not empty


def test_personal_data_is_pseudonymized_with_the_environment_key(spark, lake, validated):
    import os

    settings, _ = lake
    customers = delta_io.read(spark, tables.silver("customers").uri(settings))
    assert not {"email", "first_name", "last_name", "phone"} & set(customers.columns)
    key = os.environ["PII_HASH_KEY"]
    bronze = delta_io.read(spark, tables.bronze("crm_customers").uri(settings))
    row = customers.orderBy("customer_id").first()
    source = bronze.where(F.col("customer_id") == row.customer_id).orderBy(F.col("updated_at").desc()).first()
    assert row.email_hash == hashlib.sha256(f"{key}|{source.email.strip().lower()}".encode()).hexdigest()
    assert row.last_name_hash == hashlib.sha256(f"{key}|{source.last_name}".encode()).hexdigest()


def test_deequ_compliance_agrees_with_row_counts(spark, lake, validated):
    settings, dates = lake
    metrics = delta_io.read(spark, tables.QUALITY_METRICS.uri(settings)).where("kind = 'row'").collect()
    recon = {(r.table, r.run_date): r.bronze_rows for r in
             delta_io.read(spark, tables.RECONCILIATION.uri(settings)).collect()}
    checked = 0
    for m in metrics:
        n = recon[(m.table, m.run_date)]
        if n and m.metric is not None:
            assert m.metric == pytest.approx(1 - m.failing_rows / n, abs=1e-9), (m.table, m.rule)
            checked += 1
    assert checked > 50


def test_the_sums_deequ_makes_in_its_scan_equal_an_aggregation_and_each_rule_evaluated_again(spark, lake, ingested):
    """A daily run takes rows, quarantined, fixed, each rule's failing rows and the dedup window's counts
    from Deequ's scan (shares of its Size) and judges the rules on flag's bits. Against the same checked
    rows: the sums of a Spark aggregation (``row_counts``), and each rule's violation SQL evaluated on
    the typed columns rather than read from its bit."""
    from lakehouse.quality.deequ_checks import verify
    from lakehouse.quality.transform import all_checks, latest_ranked, ranked, row_counts
    from lakehouse.silver.stage import _bronze_for, checked_rows

    settings, dates = lake
    seen = set()
    for name, spec in RULES.items():
        day = dates[1]
        rows = checked_rows(spark, settings, spec, day, _bronze_for(spark, settings, spec, day)).cache()
        by_key = ranked(rows, spec).cache()
        try:
            checks = all_checks(spec, day)
            outcomes, totals = verify(spark, rows, spec, day, None)
            expected = row_counts(rows, spec, [c[0] for c in checks], day)
            assert totals == {k: v for k, v in expected.items() if k not in ("distinct_rows", "keys")}, name
            # ranked by key first (as validate_table does), the scan also counts the distinct rows and
            # keys the grouping counts, and judges uniqueness as Deequ's Uniqueness does
            ranked_outcomes, ranked_totals = verify(spark, by_key, spec, day, None)
            assert ranked_totals == expected, name
            unique = [r.name for r in spec.dataset_rules if r.check == "unique"]
            assert unique and all({o.rule: (o.status, o.metric) for o in ranked_outcomes}[u] ==
                                  {o.rule: (o.status, o.metric) for o in outcomes}[u] for u in unique), name
            kept = split(rows, spec)[0]
            assert Counter(map(tuple, latest_ranked(by_key, spec).select(*rows.columns).collect())) == \
                Counter(map(tuple, latest(kept, spec).collect())), name
            again = rows.agg(*[F.count_if(F.expr(sql)).alias(f"r{i}") for i, (_, sql, _, _) in enumerate(checks)]).first()
            assert {c[0]: totals[c[0]] for c in checks} == {c[0]: again[f"r{i}"] for i, c in enumerate(checks)}, name
            by_rule = {o.rule: o for o in outcomes}
            for rule, *_ in checks:
                assert by_rule[rule].metric == pytest.approx(1 - totals[rule] / totals["rows"], abs=1e-12)
            seen |= {k for k, v in totals.items() if v and k != "rows"}
            if spec.dedup_window_days:  # the window's counts as a date past the window would take them
                later = day + dt.timedelta(days=spec.dedup_window_days + 2)
                late = verify(spark, rows, spec, later, None)[1]
                expected = row_counts(rows, spec, [c[0] for c in checks], later)
                assert {k: late[k] for k in ("outside_window", "lookback_days")} == \
                    {k: expected[k] for k in ("outside_window", "lookback_days")}, name
                seen |= {k for k in ("outside_window", "lookback_days") if late[k]}
        finally:
            rows.unpersist()
            by_key.unpersist()
    # the simulated faults reach every kind of sum
    assert {"quarantined", "fixed", "outside_window", "lookback_days", "customer_id_complete"} <= seen, seen


def test_the_checked_rows_keep_the_values_as_they_came_on_the_rows_that_break_a_rule_only(spark, lake, ingested):
    """What validation caches: ``_raw_*`` as bronze gave them on a row that breaks a rule (the
    quarantine reads them; a finding about a row kept with a warning may), null on a clean row;
    bring-your-own-data's findings ask for them on every row (``all_raw``)."""
    from lakehouse.silver.stage import _bronze_for, checked_rows

    settings, dates = lake
    broken_seen = clean_seen = 0
    for name, spec in RULES.items():
        bronze = _bronze_for(spark, settings, spec, dates[1])
        every = checked_rows(spark, settings, spec, dates[1], bronze, all_raw=True)
        some = checked_rows(spark, settings, spec, dates[1], bronze)
        raw = [c for c in every.columns if c.startswith("_raw_")]
        assert raw and some.columns == every.columns, name
        bits = [c for c in every.columns if c.startswith(("_quarantine_bits", "_keep_bits"))]
        broken = " OR ".join(f"`{b}` != 0" for b in bits)
        key = ["_source_file", "_line"]
        both = every.select(*key, F.expr(broken).alias("broken"), F.to_json(F.struct(*raw)).alias("every")).join(
            some.select(*key, F.to_json(F.struct(*raw)).alias("some_set")), key)
        assert both.count() == bronze.count(), name
        # a broken row: every value as it came; a clean row: none
        assert both.where("broken AND every != some_set").count() == 0, name
        assert both.where("NOT broken AND some_set != '{}'").count() == 0, name
        broken_seen += both.where("broken").count()
        clean_seen += both.where("NOT broken").count()
    assert broken_seen and clean_seen > broken_seen


def test_report_files_exist_and_describe_every_rule(lake, validated):
    settings, dates = lake
    storage = storage_for(settings)
    rel = f"reports/quality/date={dates[2]}"
    names = {n for n, _, _ in storage.list_dir(rel)}
    assert {"quality.csv", "report.html", "trend_quarantine_rate.png", "trend_bronze_rows.png"} <= names
    rows = list(csv.DictReader(io.StringIO(storage.read_bytes(f"{rel}/quality.csv").decode())))
    expected = sum(len(o.rule_rows) for o in validated[dates[2]].tables)
    assert len(rows) == expected and {r["table"] for r in rows} == set(RULES)
    page = storage.read_bytes(f"{rel}/report.html").decode()
    assert "Data-quality report" in page and "Samples of quarantined rows" in page and "data:image/png" in page


def _fresh_lake(spark, tmp: Path, simulator_update: dict, days: int = 2):
    from lakehouse.simulator.api import ApiServer
    from tests.conftest import TOKEN

    base = make_settings(tmp)
    sim = base.simulator.model_copy(update=simulator_update)
    out = Path(base.simulator.output_dir)
    generate_sources(sim, out)
    server = ApiServer(out / "support", TOKEN, rate_limit_per_s=1000).start()
    settings = make_settings(tmp, sources={"support_api": {"base_url": server.url}}, quality={"gate_min_rows": 5})
    return settings, server, [sim.start_date + dt.timedelta(days=i) for i in range(days)]


def test_a_fault_free_run_quarantines_nothing(spark, test_settings, tmp_path):
    zero = test_settings.simulator.faults.model_copy(update={
        "missing": 0, "duplicate": 0, "out_of_range": 0, "malformed": 0, "late": 0, "bad_format": 0,
        "schema_change_day": None})
    settings, server, dates = _fresh_lake(spark, tmp_path, {"faults": zero}, days=3)
    try:
        for day in dates[:2]:
            for source in SOURCES:
                ingest_source(spark, settings, source, day)
            result = validate_and_report(spark, settings, day)
            for o in result.tables:
                assert (o.quarantined, o.duplicates_removed, o.fixed_rows) == (0, 0, 0), o
                assert o.passed and not [w for w in o.warnings if "on_time" in w]
    finally:
        server.stop()
    # the same business with 30 % of values missing on the third day: Deequ's anomaly check on the
    # completeness history flags the drop (gates off here, to see the warning alone)
    out = Path(settings.simulator.output_dir)
    generate_sources(settings.simulator.model_copy(update={"faults": zero.model_copy(update={"missing": 0.3})}), out)
    ingest_source(spark, settings, "web", dates[2])
    lenient = make_settings(tmp_path, quality={"gate_min_rows": 10**9})
    result = validate_and_report(spark, lenient, dates[2], tables=["web_events"])
    warnings = " ".join(result.tables[0].warnings)
    assert "web_events.completeness_drop:customer_id (warning)" in warnings, warnings


def test_an_error_level_fault_fails_the_gate_with_a_clear_message(spark, test_settings, tmp_path):
    faults = test_settings.simulator.faults.model_copy(update={"missing": 0.3})
    settings, server, dates = _fresh_lake(spark, tmp_path, {"faults": faults}, days=1)
    try:
        for source in ("crm", "billing"):
            ingest_source(spark, settings, source, dates[0])
        with pytest.raises(QualityGateError) as err:
            validate_and_report(spark, settings, dates[0], tables=["customers", "transactions"])
    finally:
        server.stop()
    msg = str(err.value)
    assert msg.startswith(f"silver for {dates[0]} failed")
    assert "customers.email_complete (error)" in msg and "transactions.amount_complete (error)" in msg
    assert "rows fail, compliance" in msg and "failing tables were not written" in msg
    assert not delta_io.is_delta(spark, tables.silver("transactions").uri(settings))
    failed = delta_io.read(spark, tables.QUALITY_METRICS.uri(settings)).where(
        "status = 'Failure' AND severity = 'error'").select("table", "rule").collect()
    assert {("customers", "email_complete"), ("transactions", "amount_complete")} <= {tuple(r) for r in failed}
    page = storage_for(settings).read_bytes(f"reports/quality/date={dates[0]}/report.html").decode()
    assert "FAILED" in page and "amount_complete" in page


def test_duplicates_and_versions_are_counted_in_one_pass(spark):
    """row_counts against counts worked out by hand; latest keeps the newest version per key."""
    from lakehouse.quality.deequ_checks import verify
    from lakehouse.quality.transform import latest_ranked, original_json, ranked, row_counts

    spec = RULES["web_events"]
    day = dt.date(2026, 1, 2)
    cols = ["event_id", "customer_id", "session_id", "event_type", "page", "device", "ts"]

    def ev(line, eid, cust, ts, page="home"):
        return (eid, cust, "s1", "page_view", page, "web", ts, "web_2026-01-02.jsonl", line, None, None)

    rows = [ev(1, "e1", "c1", "2026-01-02T08:00:00Z"), ev(2, "e1", "c1", "2026-01-02T08:00:00Z"),  # exact copy
            ev(3, "e2", "c1", "2026-01-02T09:00:00Z", "old"), ev(4, "e2", "c1", "2026-01-02T10:00:00Z", "new"),
            ev(5, "e3", None, "2026-01-02T08:00:00Z"), ev(6, "e3", None, "2026-01-02T08:00:00Z"),  # quarantined
            ev(7, "e4", "c2", "2026-01-02T11:00:00Z"),
            # two versions of e5 that differ only in which column is missing: not duplicates (the counts
            # hash the non-key columns; a hash that skipped nulls would make these one row)
            ("e5", "c3", None, "page_view", "s1", "web", "2026-01-02T12:00:00Z", "web_2026-01-02.jsonl", 8, None, None),
            ("e5", "c3", "s1", "page_view", None, "web", "2026-01-02T12:00:00Z", "web_2026-01-02.jsonl", 9, None, None)]
    schema = ", ".join(f"{c} string" for c in cols) + ", _source_file string, _line long, _parse_error string, _raw_record string"
    bronze = spark.createDataFrame(rows, schema)
    ann = annotate(bronze, spec, day)
    names = ["event_id_complete", "customer_id_complete", "ts_not_future"]
    counts = row_counts(ann, spec, names)
    assert counts == {"rows": 9, "quarantined": 2, "fixed": 0, "distinct_rows": 6, "keys": 4,
                      "event_id_complete": 0, "customer_id_complete": 2, "ts_not_future": 0}
    # the insert's window (web_events: 7 days): every kept row (all of 01-02) inside it the next day,
    # outside it nine days later
    assert {k: v for k, v in row_counts(ann, spec, names, day + dt.timedelta(days=1)).items()
            if k in ("outside_window", "lookback_days")} == {"outside_window": 0, "lookback_days": 1}
    assert {k: v for k, v in row_counts(ann, spec, names, day + dt.timedelta(days=9)).items()
            if k in ("outside_window", "lookback_days")} == {"outside_window": 7, "lookback_days": 0}
    kept, quarantined = split(ann, spec)
    newest = {r["event_id"]: (r["page"], r["_line"]) for r in latest(kept, spec).collect()}
    assert newest == {"e1": ("home", 2), "e2": ("new", 4), "e4": ("home", 7), "e5": (None, 9)}
    # validation ranks the rows by key once: the same latest rows, and Deequ's scan counts the same
    # distinct rows and keys (e3, all quarantined, has no silver row)
    by_key = ranked(ann, spec)
    assert {r["event_id"]: (r["page"], r["_line"]) for r in latest_ranked(by_key, spec).collect()} == newest
    assert {r["event_id"]: r["_key_rows"] for r in by_key.where("_rank = 1").collect()} == \
        {"e1": 2, "e2": 2, "e3": 2, "e4": 1, "e5": 2}
    totals = verify(spark, by_key, spec, day, None)[1]
    assert {k: totals[k] for k in ("rows", "quarantined", "distinct_rows", "keys")} == \
        {"rows": 9, "quarantined": 2, "distinct_rows": 6, "keys": 4}
    original = [json.loads(r[0]) for r in quarantined.select(original_json(bronze.columns)).collect()]
    assert original == [dict(zip(cols, rows[4][:7]))] * 2


def test_annotate_lists_each_rows_violations_reason_warnings_and_fixes(spark):
    """A row breaking two quarantining rules and a warning one, a row with warnings only, a fixed row."""
    spec = RULES["web_events"]
    day = dt.date(2026, 1, 2)
    cols = ["event_id", "customer_id", "session_id", "event_type", "page", "device", "ts"]
    schema = ", ".join(f"{c} string" for c in cols) + ", _source_file string, _line long, _parse_error string, _raw_record string"
    rows = [("e1", None, "s1", "login", None, "fax", "2026-01-09T08:00:00Z", "f", 1, None, None),
            ("e2", "c1", "s1", "login", None, "fax", "2026-01-01T08:00:00Z", "f", 2, None, None),
            ("e3", "c1", "s1", "page_view", "HOME", "web", "2026-01-02T08:00:00Z", "f", 3, None, None),
            ("e4", "c1", "s1", "page_view", "home", "web", "not a time", "f", 4, None, None)]
    got = {}
    for whole_stage in ("true", "false"):  # annotate builds its arrays one way compiled, another interpreted
        before = spark.conf.get("spark.sql.codegen.wholeStage")
        spark.conf.set("spark.sql.codegen.wholeStage", whole_stage)
        try:
            got[whole_stage] = {r["event_id"]: ([v["rule"] for v in r["_violations"]],
                                                r["_quarantine_reason"]["rule"] if r["_quarantine_reason"] else None,
                                                list(r["_warnings"]), list(r["_fixes"]))
                                for r in annotate(spark.createDataFrame(rows, schema), spec, day).collect()}
        finally:
            spark.conf.set("spark.sql.codegen.wholeStage", before)
    assert got["true"] == got["false"]
    assert got["true"] == {"e1": (["customer_id_complete", "ts_not_future", "device_known"], "customer_id_complete",
                          ["device_known"], []),
                   "e2": (["device_known", "ts_on_time"], None, ["device_known", "ts_on_time"], []),
                   "e3": ([], None, [], ["format:page"]),
                   "e4": (["ts_type", "ts_complete"], "ts_type", [], [])}  # unparseable, hence also missing


def test_a_load_without_checks_types_every_column_as_validation_does(spark, lake, ingested):
    """``conformed`` (the validation benchmark's baseline: no check at all) gives every declared column
    of every table the value ``flag`` gives it, row for row, on bronze with the simulator's faults."""
    from lakehouse.quality.transform import conformed, flag

    settings, dates = lake
    for spec in RULES.values():
        bronze = delta_io.read(spark, tables.bronze(spec.bronze).uri(settings)).where(
            F.col("_ingest_date") == F.lit(dates[0].isoformat()).cast("date"))
        cols = [*spec.columns, *[c for c in ("_source_file", "_line") if c in bronze.columns]]
        plain = conformed(bronze, spec).select(*cols)
        flagged = flag(bronze, spec, dates[0]).select(*cols)
        assert plain.count() == bronze.count() > 0, spec.table
        assert plain.exceptAll(flagged).isEmpty() and flagged.exceptAll(plain).isEmpty(), spec.table


def test_flags_past_63_rules_spill_into_further_longs_and_read_back_bit_for_bit(spark):
    """flag stores checks as bits, 63 to a long: 130 conditions take three longs; a null condition is 0."""
    from lakehouse.quality.transform import _any_bit, _bit, _bit_columns

    n = 130
    truth = [i % 3 == 0 if i % 7 else None for i in range(n)]  # every 7th condition is null
    frame = spark.createDataFrame([tuple(truth)], ", ".join(f"c{i} boolean" for i in range(n)))
    flagged = frame.select(*_bit_columns("_b", [F.col(f"c{i}") for i in range(n)]))
    assert flagged.columns == ["_b0", "_b1", "_b2"]
    row = flagged.select(*[_bit("_b", i).alias(f"b{i}") for i in range(n)], _any_bit("_b", n).alias("any")).first()
    assert [row[f"b{i}"] for i in range(n)] == [bool(t) for t in truth]
    assert row["any"]
    none = spark.createDataFrame([tuple([False] * n)], frame.schema).select(
        *_bit_columns("_b", [F.col(f"c{i}") for i in range(n)]))
    assert not none.select(_any_bit("_b", n)).first()[0]


def test_upsert_replaces_only_newer_or_changed_rows_and_skips_a_merge_that_changes_nothing(spark, tmp_path):
    """merge_latest row by row: newer wins, older is ignored, equal order with other values wins, the
    same row again (another run id) is no change; a source of no changes makes no commit."""
    uri = str(tmp_path / "upsert")
    schema = "k string, o int, v string, _run_id string"
    meta = delta_io.commit_metadata("t", "silver", "2026-01-01")
    stored = [("k1", 1, "a", "r1"), ("k2", 2, "b", "r1"), ("k3", 1, "c", "r1"), ("k5", 1, "e", "r1")]
    assert delta_io.merge_latest(spark, uri, spark.createDataFrame(stored, schema), ["k"], "o", meta)
    v1 = delta_io.latest_version(spark, uri)
    source = [("k1", 2, "x", "r2"),  # newer: replaces
              ("k2", 1, "y", "r2"),  # older: ignored
              ("k3", 1, "c", "r2"),  # the same row from another run: no change
              ("k5", 1, "z", "r2"),  # same order, other value: replaces
              ("k4", 1, "d", "r2")]  # new key: inserted
    assert delta_io.merge_latest(spark, uri, spark.createDataFrame(source, schema), ["k"], "o", meta)
    v2 = delta_io.latest_version(spark, uri)
    rows = {r["k"]: (r["o"], r["v"], r["_run_id"]) for r in delta_io.read(spark, uri).collect()}
    assert rows == {"k1": (2, "x", "r2"), "k2": (2, "b", "r1"), "k3": (1, "c", "r1"), "k4": (1, "d", "r2"),
                    "k5": (1, "z", "r2")}
    assert v2 == v1 + 1
    _, info = delta_io.last_commit(spark, uri)
    assert info["operationMetrics"]["numTargetRowsUpdated"] == "2"
    assert info["operationMetrics"]["numTargetRowsInserted"] == "1"
    # nothing newer or different: no MERGE, no new version
    again = [("k1", 2, "x", "r3"), ("k2", 1, "y", "r3"), ("k3", 1, "c", "r3")]
    assert not delta_io.merge_latest(spark, uri, spark.createDataFrame(again, schema), ["k"], "o", meta)
    assert delta_io.latest_version(spark, uri) == v2


def test_an_insert_looks_up_keys_from_its_earliest_day_in_the_window_and_older_rows_in_the_whole_table(spark, tmp_path):
    """insert_only with ``dedup_window_days``: rows of the window are merged against the stored rows from
    the day of the earliest of them on (Delta skips older files: with them moved off the disk the MERGE
    still runs), rows older than the window against the whole table, so a late re-delivery is not
    stored twice."""
    import os

    from pydantic import ValidationError

    from lakehouse.quality.rules import TableRules
    from lakehouse.quality.transform import in_dedup_window
    from lakehouse.silver.stage import _insert_new

    spec = RULES["web_events"]
    assert spec.dedup_window_days == 7
    day = dt.date(2026, 3, 10)  # window from 2026-03-03
    uri = str(tmp_path / "events")
    schema = "event_id string, ts timestamp, v string"

    def frame(rows):
        return spark.createDataFrame([(k, t and dt.datetime.fromisoformat(t), v) for k, t, v in rows], schema)

    meta = delta_io.commit_metadata("t", "silver", str(day))
    for rows in ([("old1", "2026-01-05 10:00:00", "a"), ("old2", "2026-01-06 10:00:00", "a")],
                 [("mid1", "2026-03-04 10:00:00", "a")], [("new1", "2026-03-08 10:00:00", "a")]):
        delta_io.append(frame(rows), uri, meta)
    before = [r[0].removeprefix("file:") for r in delta_io.read(spark, uri).where("ts < '2026-03-08'")
              .select(F.input_file_name()).distinct().collect()]
    assert before
    for path in before:
        os.rename(path, path + ".away")
    try:  # all rows in the window, the earliest on 03-08 (2 days back): one MERGE, reading 03-08 on only
        assert _insert_new(spark, spec, day, uri, frame([("new1", "2026-03-08 10:00:00", "b"),
                                                         ("new2", "2026-03-09 10:00:00", "a")]), meta, 0, 2) == 1
    finally:
        for path in before:
            os.rename(path + ".away", path)
    late = frame([("old1", "2026-01-05 10:00:00", "b"),   # a late re-delivery, outside the window: stored already
                  ("old3", "2026-01-07 10:00:00", "a"),   # late and new
                  ("mid1", "2026-03-04 10:00:00", "b"),   # in the window, stored already
                  ("new3", "2026-03-03 00:00:00", "a"),   # the window's first instant
                  ("x", None, "a")])                      # no event time: looked up in the whole table
    flags = [r[0] for r in late.select(in_dedup_window(spec, day)).collect()]
    assert flags == [False, False, True, True, False]
    assert _insert_new(spark, spec, day, uri, late, meta, 3, 7) == 3
    stored = {r["event_id"]: r["v"] for r in delta_io.read(spark, uri).collect()}
    assert stored == {"old1": "a", "old2": "a", "mid1": "a", "new1": "a", "new2": "a", "old3": "a", "new3": "a",
                      "x": "a"}
    # the window needs an insert-only table with a date or timestamp event time
    with pytest.raises(ValidationError, match="dedup_window_days"):
        TableRules.model_validate({**RULES["customers"].model_dump(), "dedup_window_days": 3})


def test_freshness_ignores_quarantined_rows(spark, tmp_path):
    """A stale batch stays stale when one of its rows carries a far-future time (quarantined)."""
    from lakehouse.quality.deequ_checks import run_deequ

    spec = RULES["web_events"]
    day = dt.date(2026, 1, 20)
    schema = ("event_id string, customer_id string, session_id string, event_type string, page string, "
              "device string, ts string, _source_file string, _line long, _parse_error string, _raw_record string")
    rows = [(f"e{i}", "c1", "s1", "login", None, "web", "2026-01-05T08:00:00Z", "f", i, None, None) for i in range(5)]
    rows.append(("e9", "c1", "s1", "login", None, "web", "2099-01-01T00:00:00Z", "f", 9, None, None))
    ann = annotate(spark.createDataFrame(rows, schema), spec, day).cache()
    outcomes = {o.rule: o for o in run_deequ(spark, ann, spec, day, str(tmp_path / "deequ.json"))}
    ann.unpersist()
    assert outcomes["ts_not_future"].status == "Failure"  # the 2099 row, quarantined
    assert outcomes["freshness"].metric == 15 and outcomes["freshness"].status == "Failure"


def test_a_small_date_writes_one_file_to_each_history_partition_and_quarantine(spark, lake, validated):
    """Silver's rows and the quarantine's are filters of rows cached after the window over the key; a
    date below quality.partition_by_key_min_mb writes them as one file, not one per shuffle partition
    (small files pile up otherwise: the weekly compaction is not meant to undo every date)."""
    settings, dates = lake
    for name in ("customers", "subscriptions", "support_tickets"):
        rows = delta_io.read(spark, tables.silver_history(name).uri(settings))
        files = {(r["_ingest_date"], r["f"]) for r in rows.select("_ingest_date", F.input_file_name().alias("f"))
                 .distinct().collect()}
        per_date = Counter(d for d, _ in files)
        assert set(per_date.values()) == {1} and set(per_date) <= set(dates), (name, per_date)  # (no file: no rows)
    for source in {RULES[t].source for t in RULES}:
        rows = delta_io.read(spark, tables.quarantine(source).uri(settings))
        files = Counter((r["_ingest_date"], r["table"]) for r in rows.select(
            "_ingest_date", "table", F.input_file_name().alias("f")).distinct().collect())
        assert set(files.values()) <= {1}, (source, files)


def test_large_dates_are_partitioned_by_key_and_compiled_with_the_same_outcome_silver_and_quarantine(
        spark, lake, validated):
    """From quality.partition_by_key_min_mb a date's rows are partitioned by key first, and from
    quality.compile_min_mb (where SQL runs interpreted, as in the test overlay) checked and written with
    code generation; the demo's and the tests' dates are below both. At limit 0 every table takes both
    paths and must come out as it does without them, its quarantine in one file; the session's setting is
    restored after."""
    from lakehouse.silver.stage import _bronze_for, compiled_if_large, validate_table

    settings, dates = lake
    key = "spark.sql.codegen.wholeStage"
    assert spark.conf.get(key) == "false"  # the test overlay

    def run(limit: float, table: str):
        s = settings.model_copy(update={"quality": settings.quality.model_copy(
            update={"partition_by_key_min_mb": limit, "compile_min_mb": limit})})
        bronze = _bronze_for(spark, s, RULES[table], dates[0])
        with compiled_if_large(spark, s, bronze, table):
            compiled = spark.conf.get(key)
            outcome, silver, quarantine, checked = validate_table(spark, s, RULES[table], dates[0], "same", "k",
                                                                  bronze=bronze)
            try:
                partitioned = "RepartitionByExpression" in checked._jdf.queryExecution().logical().toString()
                # the window over the key finds the rows partitioned by key: no shuffle of its own after
                # the repartition (adaptive execution prints the final plan before the initial one)
                plan = checked._jdf.queryExecution().executedPlan().toString()
                shuffles = plan.split("== Initial Plan ==")[0].count("Exchange hashpartitioning")
                # a date's quarantine is one file either way (a small share of the date's rows)
                assert quarantine.rdd.getNumPartitions() == 1, table
                content = [sorted(json.dumps(r.asDict(recursive=True), default=str, sort_keys=True)
                                  for r in df.collect()) for df in (silver, quarantine)]
            finally:
                checked.unpersist()
        assert spark.conf.get(key) == "false"
        counts = (outcome.bronze_rows, outcome.silver_rows, outcome.quarantined, outcome.duplicates_removed,
                  outcome.superseded, outcome.fixed_rows, outcome.failures)
        return (partitioned, compiled, shuffles), counts, content

    for table in RULES:
        large, small = run(0.0, table), run(1e9, table)
        assert large[0][:2] == (True, "true") and small[0][:2] == (False, "false"), table
        assert large[0][2] == small[0][2], (table, large[0], small[0])  # the window's shuffle is the repartition
        assert large[1] == small[1] and large[1][0] > 0, table
        assert large[2] == small[2], table
