"""Gold's computations on small in-memory frames: windows, late rows, point-in-time state, labels.

No lake: every input is a frame built here (``lakehouse.gold`` computes from frames to frames; its
reads and writes are in ``gold.stage``, tested on a real lake in tests/integration/test_gold.py).
"""

import datetime as dt

import pytest
from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from lakehouse.gold import activity, entities, features, labels

D = dt.date.fromisoformat
T = dt.datetime.fromisoformat
DAILY = ("customer_id string, activity_date date, ingest_date date, sessions long, events long, feature_uses long, "
         "logins long, paid_amount double, paid_count long, failed_count long, refund_amount double, nps_score int, "
         "nps_at timestamp")


def _daily(spark, rows):
    """Daily activity rows from (customer, activity date, ingest date, sessions, paid amount, logins)."""
    def day(v):
        return v if isinstance(v, dt.date) else D(v)

    full = [(c, day(a), day(i), s, s, 0, lg, p, int(p > 0), 0, 0.0, None, None) for c, a, i, s, p, lg in rows]
    return spark.createDataFrame(full, DAILY)


def test_windows_take_the_days_inside_each_window_and_nothing_older(spark):
    day = D("2026-04-30")
    ages = [0, 6, 7, 29, 30, 59, 60, 89, 90]  # days before the snapshot day
    daily = _daily(spark, [("A", day - dt.timedelta(days=a), day - dt.timedelta(days=a), 1, 10.0, 0) for a in ages])
    row = features.window_sums(daily, day).first()
    assert row["spend_7d"] == 20.0            # ages 0 and 6
    assert row["spend_30d"] == 40.0           # 0, 6, 7, 29
    assert row["spend_90d"] == 80.0           # all but age 90
    assert row["sessions_prev_30d"] == 2      # ages 30..59
    assert row["active_days_7d"] == 2 and row["active_days_30d"] == 4


def test_a_late_row_counts_from_the_day_it_arrived_never_before(spark):
    d1, d2 = D("2026-03-10"), D("2026-03-11")
    # B's activity of d1 - 2 arrives on d2 (late); A's row of d2 arrives on d2
    daily = _daily(spark, [("A", "2026-03-10", "2026-03-10", 2, 5.0, 1), ("B", "2026-03-08", "2026-03-11", 3, 7.0, 0),
                           ("A", "2026-03-11", "2026-03-11", 1, 0.0, 0)])
    on_d1 = {r["customer_id"]: r for r in features.window_sums(features.known_on(daily, d1), d1).collect()}
    on_d2 = {r["customer_id"]: r for r in features.window_sums(features.known_on(daily, d2), d2).collect()}
    assert set(on_d1) == {"A"} and on_d1["A"]["sessions_7d"] == 2
    assert on_d2["B"]["sessions_7d"] == 3 and on_d2["B"]["spend_7d"] == 7.0
    assert on_d2["A"]["sessions_7d"] == 3


def test_the_state_rolled_forward_a_day_equals_one_pass_with_late_and_early_rows(spark):
    days = [D("2026-03-01"), D("2026-03-02"), D("2026-03-03")]
    daily = _daily(spark, [
        ("A", "2026-03-01", "2026-03-01", 1, 10.25, 1),
        ("A", "2026-02-27", "2026-03-02", 1, 3.10, 0),   # late: arrived on the 2nd, dated before the 1st
        ("B", "2026-03-03", "2026-03-02", 2, 4.00, 1),   # a clock running ahead: arrived on the 2nd, dated the 3rd
        ("B", "2026-03-03", "2026-03-03", 1, 0.65, 0),
        ("C", "2026-03-04", "2026-03-03", 1, 9.99, 1)])  # dated after the last day: not visible yet
    previous = None
    for day in days:
        rolled, how = features.lifetime_state(daily, day, previous)
        one_pass, _ = features.lifetime_state(daily, day)
        assertDataFrameEqual(rolled, one_pass)
        expected = "full pass over the daily activity" if previous is None else \
            f"rolled forward from {day - dt.timedelta(days=1)}"
        assert how == expected
        previous = rolled.drop("as_of_date")
    last = {r["customer_id"]: r for r in previous.collect()}
    assert set(last) == {"A", "B"}
    assert str(last["A"]["total_spend"]) == "13.35" and last["A"]["first_activity_date"] == D("2026-02-27")
    assert str(last["B"]["total_spend"]) == "4.65" and last["B"]["last_login_date"] == D("2026-03-03")


HISTORY = "customer_id string, country string, updated_at timestamp, _ingest_date date"


def test_entity_state_as_of_a_date_as_known_on_a_later_one_and_from_a_checkpoint(spark):
    history = spark.createDataFrame([
        ("A", "DE", T("2026-01-01 10:00"), D("2026-01-01")), ("A", "FR", T("2026-02-10 09:00"), D("2026-02-10")),
        ("B", "ES", T("2026-01-15 08:00"), D("2026-01-15")),
        ("B", "NL", T("2026-01-31 23:00"), D("2026-02-03")),   # late: stamped in January, arrived in February
        ("C", "US", T("2026-02-05 12:00"), D("2026-01-20"))],  # stamped after its arrival
        HISTORY)

    def countries(day, known_on=None, checkpoint=None):
        state = entities.state_as_of(history, "customers", D(day), D(known_on) if known_on else None, checkpoint)
        return {r["customer_id"]: r["country"] for r in state.collect()}

    assert countries("2026-02-01") == {"A": "DE", "B": "ES"}                 # B's late version not known yet
    assert countries("2026-02-01", known_on="2026-02-04") == {"A": "DE", "B": "NL"}  # ...known later
    assert countries("2026-02-06") == {"A": "DE", "B": "NL", "C": "US"}      # C once its stamp has passed
    assert countries("2026-02-28") == {"A": "FR", "B": "NL", "C": "US"}
    # the same states from February's checkpoint (the state as of Feb 1, known on Feb 1)
    checkpoint = entities.checkpoint_state(history, "customers", D("2026-02-01"))
    assert {r["customer_id"]: r["country"] for r in checkpoint.collect()} == {"A": "DE", "B": "ES"}
    for day, known_on in [("2026-02-01", "2026-02-04"), ("2026-02-06", None), ("2026-02-28", None)]:
        assert countries(day, known_on, checkpoint) == countries(day, known_on), day


def test_states_over_a_range_of_dates_equal_the_definition_with_late_early_and_null_stamped_versions(spark):
    """``states_over`` (the history load's states: intervals per key spread over the dates) gives the
    rows ``states_as_of`` (every version joined to every date, ranked) gives, for the offsets gold uses:
    as of the date, 60 days before it (the price reference), and as of and known on 30 days after it
    (labels)."""
    import random

    rng = random.Random(11)
    start = D("2026-01-01")
    rows = []
    for k in range(40):
        arrived = start + dt.timedelta(days=rng.randint(-20, 60))
        for v in range(rng.randint(1, 5)):
            arrived += dt.timedelta(days=rng.choice([0, 1, 3, 9]))  # at most one version a key a day
            if any(r[0] == f"K{k}" and r[3] == arrived for r in rows):
                continue
            lag = rng.choice([0, 0, 0, -1, -5, 2, -40])  # stamped on arrival, late (before it) or early
            stamp = dt.datetime.combine(arrived + dt.timedelta(days=lag), dt.time(rng.randint(0, 23)))
            rows.append((f"K{k}", f"v{v}", None if rng.random() < 0.05 else stamp, arrived))
    history = spark.createDataFrame(rows, HISTORY)
    dates = [start + dt.timedelta(days=i) for i in range(0, 70, 3)]
    days = spark.createDataFrame([(d,) for d in dates], "snapshot_date date")
    for as_of_shift, known_shift in [(0, 0), (-60, 0), (30, 30)]:
        at = days.select(F.date_add("snapshot_date", as_of_shift).alias("as_of"),
                         F.date_add("snapshot_date", known_shift).alias("known_on"), "snapshot_date")
        expected = entities.states_as_of(history, "customers", at).drop("as_of", "known_on")
        got = entities.states_over(history, "customers", days, as_of_shift, known_shift)
        assert got.columns == expected.columns
        assert expected.count() > 100, (as_of_shift, known_shift)
        assertDataFrameEqual(got, expected)


SUBS = ("subscription_id string, customer_id string, plan string, contract string, monthly_price double, "
        "start_date date, cancel_date date, status string, updated_at timestamp, _ingest_date date")


def _subs(spark, rows):
    return spark.createDataFrame(
        [(s, c, plan, "monthly", price, D(start), D(cancel) if cancel else None, status, T(upd), D(upd[:10]))
         for s, c, plan, price, start, cancel, status, upd in rows], SUBS)


def test_a_snapshot_keeps_active_customers_and_compares_prices_with_sixty_days_before(spark):
    day = D("2026-04-01")
    history = _subs(spark, [
        ("S1", "A", "basic", 10.0, "2025-12-01", None, "active", "2025-12-01 00:00"),
        ("S1", "A", "plus", 15.0, "2025-12-01", None, "active", "2026-03-20 00:00"),     # upgraded since
        ("S2", "B", "basic", 10.0, "2026-01-10", "2026-03-30", "cancelled", "2026-03-30 00:00"),  # gone
        ("S3", "C", "basic", 12.0, "2026-03-25", None, "active", "2026-03-25 00:00")])   # started since
    subs = entities.state_as_of(history, "subscriptions", day)
    then = entities.state_as_of(history, "subscriptions", features.price_reference_day(day), known_on=day)
    customers = spark.createDataFrame(
        [("A", "DE", "web", 1990, D("2025-12-01")), ("C", "FR", "shop", 1985, None)],
        "customer_id string, country string, channel string, birth_year int, signup_date date")
    tickets = spark.createDataFrame(
        [("T1", "A", "open", T("2026-03-25 10:00"), "billing")],
        "ticket_id string, customer_id string, status string, created_at timestamp, category string")
    daily = _daily(spark, [("A", "2026-03-31", "2026-03-31", 2, 15.0, 1), ("A", "2026-03-01", "2026-03-01", 1, 15.0, 0)])
    state = features.lifetime(features.known_on(daily, day))
    snap = {r["customer_id"]: r for r in
            features.snapshot(day, subs, customers, then, tickets, daily, state).collect()}
    assert set(snap) == {"A", "C"}  # B cancelled before the snapshot date
    a, c = snap["A"], snap["C"]
    assert a["plan"] == "plus" and a["price_change_60d"] == 0.5 and a["plan_changed_60d"] is True
    assert c["price_change_60d"] == 0.0 and c["plan_changed_60d"] is False  # no earlier version: no change
    assert a["tenure_days"] == (day - D("2025-12-01")).days and c["tenure_days"] == (day - D("2026-03-25")).days
    assert a["spend_30d"] == 15.0 and a["total_spend"] == 30.0 and a["days_since_last_login"] == 1
    assert a["open_tickets"] == 1 and a["billing_tickets_90d"] == 1 and c["open_tickets"] == 0
    assert a["observed_days"] == 32 and c["sessions_30d"] == 0  # zero-filled, not null


def test_labels_say_churned_only_within_the_horizon(spark):
    run_date, horizon = D("2026-03-31"), 30
    snapshot = spark.createDataFrame([(c, D("2026-03-01")) for c in "ABCD"], "customer_id string, snapshot_date date")
    subs = entities.state_as_of(_subs(spark, [
        ("S1", "A", "basic", 10.0, "2026-01-01", "2026-03-15", "cancelled", "2026-03-15 00:00"),  # within
        ("S2", "B", "basic", 10.0, "2026-01-01", None, "active", "2026-01-01 00:00"),
        ("S3", "C", "basic", 10.0, "2026-01-01", "2026-03-31", "cancelled", "2026-03-31 00:00"),  # the last day
        ("S4", "D", "basic", 10.0, "2026-01-01", "2026-04-01", "cancelled", "2026-03-31 12:00")]),  # after it
        "subscriptions", run_date)
    got = {r["customer_id"]: (r["churned"], r["churn_date"]) for r in
           labels.labels(snapshot, subs, run_date, horizon).collect()}
    assert got == {"A": (1, D("2026-03-15")), "B": (0, None), "C": (1, D("2026-03-31")), "D": (0, None)}
    assert labels.label_snapshot_date(horizon, run_date) == D("2026-03-01")


EVENTS = "customer_id string, session_id string, ts timestamp, event_type string, _ingest_date date"


def test_a_session_continued_in_a_later_batch_counts_once_incrementally_and_in_a_full_pass(spark):
    events = spark.createDataFrame([
        ("A", "s1", T("2026-03-01 23:50"), "login", D("2026-03-01")),
        ("A", "s1", T("2026-03-02 00:10"), "feature_use", D("2026-03-02")),   # the same session, next batch
        ("A", "s2", T("2026-03-02 09:00"), "login", D("2026-03-02"))], EVENTS)
    none = spark.createDataFrame([], "customer_id string, amount double, status string, billed_at timestamp, "
                                     "_ingest_date date")
    nps = spark.createDataFrame([], "customer_id string, score int, submitted_at timestamp, _ingest_date date")
    full = activity.compute_activity(events, none, nps)
    day1 = activity.compute_activity(events.where("_ingest_date = '2026-03-01'"), none, nps,
                                     seen_sessions=events.limit(0).select("session_id"))
    day2 = activity.compute_activity(events.where("_ingest_date = '2026-03-02'"), none, nps,
                                     seen_sessions=events.where("_ingest_date < '2026-03-02'").select("session_id"))
    assertDataFrameEqual(day1.unionByName(day2), full)
    by_day = {(r["activity_date"], r["ingest_date"]): r for r in full.collect()}
    assert by_day[(D("2026-03-01"), D("2026-03-01"))]["sessions"] == 1
    assert by_day[(D("2026-03-02"), D("2026-03-02"))]["sessions"] == 1  # s2 only: s1 was counted on the 1st
    assert by_day[(D("2026-03-02"), D("2026-03-02"))]["events"] == 2
    assert full.agg(F.sum("logins")).first()[0] == 2


@pytest.mark.parametrize("day, active", [("2026-01-31", False), ("2026-02-01", True), ("2026-03-01", True),
                                         ("2026-03-02", False)])
def test_a_subscription_is_active_from_its_start_until_the_day_it_ends(spark, day, active):
    subs = _subs(spark, [("S1", "A", "basic", 10.0, "2026-02-01", "2026-03-02", "cancelled", "2026-03-02 00:00")])
    assert entities.active_at(subs, D(day)).count() == int(active)


def test_running_sums_over_many_dates_equal_the_join_of_each_row_to_its_dates(spark):
    """The history load's windows and lifetime states by running sums (``window_values``,
    ``lifetime_values``) equal the definition: each daily row joined to every date it is known on
    (``known_at``), aggregated per date; with late rows, a clock running ahead, rows leaving each
    window on the range's dates, rows from before the range, and amounts in cents."""
    first, last = D("2026-03-01"), D("2026-05-10")
    start = first - dt.timedelta(days=100)
    rows = []
    for k in range(0, 170, 3):  # activity every third day from 100 days before the range
        a = start + dt.timedelta(days=k)
        rows.append(("A", a, a, k % 4, round(9.99 * (k % 5), 2), 1))
        if k % 9 == 0:
            rows.append(("A", a, a + dt.timedelta(days=k % 4 + 1), 2, 0.01, 0))  # late
        if k % 15 == 0:
            rows.append(("B", a + dt.timedelta(days=1), a, 1, 3.33, 1))  # dated the day after it arrived
    rows.append(("C", D("2026-04-02"), D("2026-04-02"), 0, 0.0, 0))  # a customer with nothing to sum
    full = [(c, a, i, s, s * 3, s % 2, lg, p, int(p > 0), int(s == 3), round(p / 10, 2),
             (s * 3) if s else None, T(f"{a.isoformat()}T10:00:00") if s else None)
            for c, a, i, s, p, lg in rows]
    daily = spark.createDataFrame(full, DAILY)
    dates = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    days = spark.createDataFrame([(d,) for d in dates], "snapshot_date date")

    expected = features.window_sums_at(features.known_at(daily, days, features.WINDOW_DAYS))
    got = features.window_values(daily, first, last)
    nonzero = " OR ".join(f"{n} != 0" for n in features.WINDOWED)
    money = ["spend_7d", "spend_30d", "spend_90d", "refunds_90d"]

    def rounded(df):
        return df.select(*[F.round(c, 2).alias(c) if c in money else F.col(c) for c in expected.columns])

    assert expected.count() > 100
    assertDataFrameEqual(rounded(got.where(nonzero)), rounded(expected.where(nonzero)))
    # a customer and date without a row of the definition has no row or one of zeros
    assert got.join(expected, ["snapshot_date", "customer_id"], "left_anti").where(nonzero).count() == 0

    assertDataFrameEqual(features.lifetime_values(daily, first, last), features.lifetime_states(daily, days))
