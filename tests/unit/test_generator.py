"""The simulator is deterministic, carries the configured churn rate, and injects faults at the
configured rates (ground truth recorded)."""

import json
from collections import Counter

from lakehouse.simulator.systems import generate_sources, tree_checksum


def test_same_seed_same_bytes_other_seed_differs(test_settings, generated_sources, tmp_path):
    out, _ = generated_sources
    again = tmp_path / "again"
    generate_sources(test_settings.simulator, again)
    assert tree_checksum(out) == tree_checksum(again)
    other = tmp_path / "other"
    generate_sources(test_settings.simulator.model_copy(update={"seed": 7}), other)
    assert tree_checksum(other) != tree_checksum(out)
    # large simulations keep web events in files, not memory: the same bytes come out
    spilled = tmp_path / "spilled"
    summary = generate_sources(test_settings.simulator, spilled, spill=True)
    assert tree_checksum(spilled) == tree_checksum(out)
    assert summary["web_events"] > 0


def test_churn_rate_within_tolerance(test_settings, generated_sources):
    _, summary = generated_sources
    churn = test_settings.simulator.churn
    assert summary["churned"] > 0
    assert abs(summary["monthly_churn_rate"] - churn.target_monthly_rate) <= churn.tolerance


def test_fault_rates_within_tolerance(test_settings, generated_sources):
    out, summary = generated_sources
    faults = [json.loads(line) for line in (out / "ground_truth" / "faults.jsonl").read_text().splitlines()]
    web = Counter(f["fault"] for f in faults if f["source"] == "web")
    rates = test_settings.simulator.faults
    # web events (~tens of thousands) are numerous enough for rate checks at test scale
    delivered = summary["web_events"] - web["duplicate"]
    for fault in ("missing", "duplicate", "malformed", "late"):
        observed = web[fault] / delivered
        expected = getattr(rates, fault)
        assert abs(observed - expected) <= 0.3 * expected + 0.001, (fault, observed, expected)
    assert {f["fault"] for f in faults} >= {"missing", "duplicate", "out_of_range", "malformed", "late",
                                            "bad_format", "schema_change"}


def test_schema_change_day_adds_a_column(test_settings, generated_sources):
    out, summary = generated_sources
    change = summary["schema_change_date"]
    inbox = out / "billing" / "inbox"
    before = sorted(inbox.glob("*.csv"))[0].read_text().splitlines()[0].split(",")
    after = (inbox / f"transactions_{change}.csv").read_text().splitlines()[0].split(",")
    assert "tax_amount" not in before and "tax_amount" in after


def test_signal_declining_engagement_precedes_churn(generated_sources):
    """Churners have fewer web events in their last 14 days than in their first 14 days."""
    import datetime as dt

    out, summary = generated_sources
    start = dt.date.fromisoformat(summary["start_date"])
    rows = [line.split(",") for line in (out / "ground_truth" / "churn.csv").read_text().splitlines()[1:]]
    # customers observed (signed up, simulation running) throughout both windows
    churn = {c: d for c, d, signup in rows
             if (dt.date.fromisoformat(d) - max(start, dt.date.fromisoformat(signup))).days >= 28}
    counts: Counter = Counter()
    for f in sorted((out / "web" / "logs").glob("date=*/events.jsonl")):
        day = dt.date.fromisoformat(f.parent.name[5:])
        for line in f.read_text().splitlines():
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                continue
            cid = ev.get("customer_id")
            if cid in churn:
                gap = (dt.date.fromisoformat(churn[cid]) - day).days
                if 0 <= gap < 14:
                    counts["late"] += 1
                elif 14 <= gap < 28:
                    counts["early"] += 1
    assert counts["early"] > 0
    assert counts["late"] < counts["early"]
