"""``gold.customer_daily_features``: one snapshot per date D of every customer active on D.

Every value is computed from data whose event time is on or before D *and* which had arrived by D
(see ``entities`` and ``activity``), so a snapshot never changes once written and a recompute of D
on any later day yields the same rows. The run for D writes only D's partition; its inputs are the
customer state as of D and the daily activity rows (one row per customer and day, not raw events).
Definitions, windows and null handling: docs/transformations.md.

This module computes, from frames to frames; ``gold.stage`` reads the inputs and writes the tables.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from lakehouse.gold.entities import active_at, date_lit, latest_subscription

FEATURE_VERSION = 1  # bump when a definition below changes (the feature registry records versions)


WINDOW_DAYS = 90  # the longest window: a snapshot reads daily rows of its last 90 activity days only
PRICE_LOOKBACK_DAYS = 60  # price_change_60d / plan_changed_60d compare with the subscription this long ago
SNAPSHOT = "snapshot_date"  # the date column of the many-date computations (the history load)


def price_reference_day(day: dt.date) -> dt.date:
    """The day whose subscription state ``price_change_60d`` compares with (as known on ``day``)."""
    return day - dt.timedelta(days=PRICE_LOOKBACK_DAYS)


def window_sums(daily: DataFrame, day: dt.date) -> DataFrame:
    """Windowed sums (up to 90 days back) per customer from the daily activity rows known on ``day``."""
    oldest = F.lit((day - dt.timedelta(days=WINDOW_DAYS - 1)).isoformat()).cast("date")
    # a plain bound on activity_date, so Delta skips the files of older days by their statistics
    rows = daily.where(F.col("activity_date") >= oldest).select("*", date_lit(day).alias(SNAPSHOT))
    return window_sums_at(rows).drop(SNAPSHOT)


def window_sums_at(rows: DataFrame) -> DataFrame:
    """``window_sums`` per (``snapshot_date``, customer) of daily rows that carry the snapshot date they
    count for (rows older than its 90-day window are ignored)."""
    age = F.datediff(F.col(SNAPSHOT), F.col("activity_date"))  # 0 = the snapshot day itself

    def within(n: int, col: str, lo: int = 0):
        return F.sum(F.when((age >= lo) & (age < n), F.col(col)).otherwise(0))

    def days_with(n: int, col: str):
        return F.sum(F.when((age < n) & (F.col(col) > 0), 1).otherwise(0))

    return rows.where(age < WINDOW_DAYS).groupBy(SNAPSHOT, "customer_id").agg(
        within(7, "paid_amount").alias("spend_7d"),
        within(30, "paid_amount").alias("spend_30d"),
        within(90, "paid_amount").alias("spend_90d"),
        within(30, "failed_count").alias("failed_payments_30d"),
        within(90, "failed_count").alias("failed_payments_90d"),
        within(90, "refund_amount").alias("refunds_90d"),
        within(7, "sessions").alias("sessions_7d"),
        within(30, "sessions").alias("sessions_30d"),
        within(60, "sessions", lo=30).alias("sessions_prev_30d"),
        within(30, "events").alias("events_30d"),
        within(30, "feature_uses").alias("feature_uses_30d"),
        days_with(7, "sessions").alias("active_days_7d"),
        days_with(30, "sessions").alias("active_days_30d"),
    )


def known_at(daily: DataFrame, days: DataFrame, window_days: int | None = None) -> DataFrame:
    """``known_on`` for many dates: each daily row once per date of ``days`` (column ``snapshot_date``)
    it is known on, with that date; with ``window_days``, only for the dates whose window of that many
    days holds its activity date. The definition the history load's running sums are checked against
    (``window_values``, ``lifetime_values``; tests/unit/test_gold_computations.py): it costs a row per
    daily row and date, too many for long ranges."""
    d = F.col(SNAPSHOT)
    cond = (F.col("ingest_date") <= d) & (F.col("activity_date") <= d)
    if window_days is not None:
        cond = cond & (F.datediff(d, F.col("activity_date")) < window_days)
    return daily.join(F.broadcast(days.select(SNAPSHOT)), cond)


# ---- many dates by running sums (the history load) ------------------------------------------------
# Each windowed feature: (daily column, first age, ages below which it counts, "sum" or "days" (rows with
# the column above 0)); ``window_sums_at`` defines the same with its ``within`` and ``days_with``.
WINDOWED = {
    "spend_7d": ("paid_amount", 0, 7, "sum"), "spend_30d": ("paid_amount", 0, 30, "sum"),
    "spend_90d": ("paid_amount", 0, 90, "sum"), "failed_payments_30d": ("failed_count", 0, 30, "sum"),
    "failed_payments_90d": ("failed_count", 0, 90, "sum"), "refunds_90d": ("refund_amount", 0, 90, "sum"),
    "sessions_7d": ("sessions", 0, 7, "sum"), "sessions_30d": ("sessions", 0, 30, "sum"),
    "sessions_prev_30d": ("sessions", 30, 60, "sum"), "events_30d": ("events", 0, 30, "sum"),
    "feature_uses_30d": ("feature_uses", 0, 30, "sum"), "active_days_7d": ("sessions", 0, 7, "days"),
    "active_days_30d": ("sessions", 0, 30, "days"),
}
MONEY = "decimal(30,6)"  # money summed exactly in running sums (an add and a later subtract cancel out)
MONEY_COLUMNS = ("paid_amount", "refund_amount")


def _visible_from() -> Column:
    """The first date a daily row is known on: it has arrived and its activity date has come."""
    return F.greatest(F.col("ingest_date"), F.col("activity_date"))


def _spread(rows: DataFrame, start: str, end: str, first: dt.date, last: dt.date) -> DataFrame:
    """Rows valid from ``start`` to ``end`` (inclusive; null: open) as one row per date of both that
    span and ``first..last`` (column ``snapshot_date``)."""
    lo = F.greatest(F.col(start), date_lit(first))
    hi = F.least(F.coalesce(F.col(end), date_lit(last)), date_lit(last))
    return (rows.where(lo <= hi).select("*", F.explode(F.sequence(lo, hi)).alias(SNAPSHOT))
            .drop(start, end))


def window_values(daily: DataFrame, first: dt.date, last: dt.date) -> DataFrame:
    """``window_sums_at(known_at(daily, days, WINDOW_DAYS))`` for the dates ``first..last``, by running
    sums instead of joining each daily row to every date it counts for: a row adds its values to a
    window on the first date it is known on (and inside the window) and takes them away the day after
    its activity date leaves the window; each customer's running sum over those changes is the window's
    value until the next change. Costs a few rows per daily row plus one per customer and date, where
    the join cost up to 90 per daily row. Customers whose windows are all empty on a date may have a
    row of zeros (a snapshot's left join fills absent ones with zeros alike)."""
    a, v = F.col("activity_date"), _visible_from()

    def typed(name: str) -> str:
        return MONEY if WINDOWED[name][0] in MONEY_COLUMNS else "long"

    def value(name: str, sign: int) -> Column:
        col, _, _, kind = WINDOWED[name]
        x = F.when(F.col(col) > 0, F.lit(1)).otherwise(F.lit(0)) if kind == "days" else F.col(col)
        return (x.cast(typed(name)) if sign > 0 else -x.cast(typed(name))).cast(typed(name))

    changes = []
    for lo, hi in sorted({(lo, hi) for _, lo, hi, _ in WINDOWED.values()}):
        start, stop = F.greatest(v, F.date_add(a, lo)), F.date_add(a, hi)  # counts on start..stop-1
        for day, sign in ((start, 1), (stop, -1)):
            changes.append(F.when(start < stop, F.struct(day.alias("change_date"), *[
                (value(n, sign) if WINDOWED[n][1:3] == (lo, hi) else F.lit(0).cast(typed(n))).alias(n)
                for n in WINDOWED])))
    deltas = daily.select("customer_id", F.explode(F.array(*changes)).alias("c")).where(F.col("c").isNotNull()) \
        .select("customer_id", "c.*")
    by_day = deltas.groupBy("customer_id", "change_date").agg(*[F.sum(n).alias(n) for n in WINDOWED])
    w = Window.partitionBy("customer_id").orderBy("change_date")
    running = by_day.select(
        "customer_id", "change_date",
        F.date_sub(F.lead("change_date").over(w), 1).alias("until"),
        *[F.sum(n).over(w.rowsBetween(Window.unboundedPreceding, Window.currentRow)).alias(n) for n in WINDOWED])
    out = _spread(running, "change_date", "until", first, last)
    return out.select(SNAPSHOT, "customer_id", *[
        F.col(n).cast("double").alias(n) if col in MONEY_COLUMNS else F.col(n) for n, (col, *_) in WINDOWED.items()])


def lifetime_values(daily: DataFrame, first: dt.date, last: dt.date) -> DataFrame:
    """``lifetime_states`` for the dates ``first..last`` by running aggregates: each customer's lifetime
    aggregates of the rows that became known on each date, accumulated in date order, hold from that
    date to the next change. Equal to ``lifetime_states`` (money in DECIMAL(20,2), as there)."""
    per_day = lifetime(daily.withColumn("_visible", _visible_from()), by=("_visible",))
    w = Window.partitionBy("customer_id").orderBy("_visible")
    upto = w.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    running = per_day.select(
        "customer_id", "_visible", F.date_sub(F.lead("_visible").over(w), 1).alias("_until"),
        F.sum("total_spend").over(upto).cast("decimal(20,2)").alias("total_spend"),
        F.sum("payments_total").over(upto).alias("payments_total"),
        F.max("last_payment_date").over(upto).alias("last_payment_date"),
        F.max("last_login_date").over(upto).alias("last_login_date"),
        F.max_by("last_nps", "last_nps_at").over(upto).alias("last_nps"),
        F.max("last_nps_at").over(upto).alias("last_nps_at"),
        F.min("first_activity_date").over(upto).alias("first_activity_date"))
    out = _spread(running, "_visible", "_until", first, last)
    return out.select(*[c for c in out.columns if c != SNAPSHOT], F.col(SNAPSHOT).alias("as_of_date"))


# ---- the lifetime state: what a snapshot needs from all history, rolled forward a day at a time ----
def lifetime(daily: DataFrame, by: tuple[str, ...] = ()) -> DataFrame:
    """Per customer (and ``by``): the all-history aggregates of ``daily`` rows. Money is summed as
    DECIMAL(20,2) so a state rolled forward day by day equals one computed in a single pass, to the cent."""
    def last_day(col: str):
        return F.max(F.when(F.col(col) > 0, F.col("activity_date")))

    return daily.groupBy(*by, "customer_id").agg(
        F.sum(F.col("paid_amount").cast("decimal(20,2)")).cast("decimal(20,2)").alias("total_spend"),
        F.sum("paid_count").alias("payments_total"),
        last_day("paid_count").alias("last_payment_date"),
        last_day("logins").alias("last_login_date"),
        F.max_by("nps_score", "nps_at").alias("last_nps"),
        F.max("nps_at").alias("last_nps_at"),
        F.min("activity_date").alias("first_activity_date"),
    )


def roll(previous: DataFrame, today: DataFrame) -> DataFrame:
    """state(D) from state(D-1) and the lifetime aggregates of the rows that became visible on D."""
    both = previous.select(*today.columns).unionByName(today)
    return both.groupBy("customer_id").agg(
        F.sum("total_spend").cast("decimal(20,2)").alias("total_spend"),
        F.sum("payments_total").alias("payments_total"),
        F.max("last_payment_date").alias("last_payment_date"),
        F.max("last_login_date").alias("last_login_date"),
        F.max_by("last_nps", "last_nps_at").alias("last_nps"),
        F.max("last_nps_at").alias("last_nps_at"),
        F.min("first_activity_date").alias("first_activity_date"),
    )


def known_on(daily: DataFrame, day: dt.date) -> DataFrame:
    d = F.lit(day.isoformat()).cast("date")
    return daily.where(F.col("ingest_date") <= d).where(F.col("activity_date") <= d)


def visible_on(daily: DataFrame, day: dt.date) -> DataFrame:
    """The daily rows that became visible on ``day``: those that arrived on it (activity on or before
    it) and those that arrived earlier dated ``day`` (a clock running ahead)."""
    d = F.lit(day.isoformat()).cast("date")
    return daily.where(((F.col("ingest_date") == d) & (F.col("activity_date") <= d))
                       | ((F.col("ingest_date") < d) & (F.col("activity_date") == d)))


def lifetime_state(daily: DataFrame, day: dt.date, previous: DataFrame | None = None) -> tuple[DataFrame, str]:
    """The ``as_of_date = day`` rows of ``gold.customer_lifetime_state`` and how they were made.

    With ``previous`` (D-1's state) D costs that state plus the daily rows that became visible on D;
    without it (the first date, or after a gap) it is one pass over every daily row known on D. Both
    give the same rows (tests/integration/test_gold.py).
    """
    d = F.lit(day.isoformat()).cast("date")
    if previous is not None:
        prev = (day - dt.timedelta(days=1)).isoformat()
        state, how = roll(previous, lifetime(visible_on(daily, day))), f"rolled forward from {prev}"
    else:
        state, how = lifetime(known_on(daily, day)), "full pass over the daily activity"
    return state.select("*", d.alias("as_of_date")), how


def lifetime_states(daily: DataFrame, days: DataFrame) -> DataFrame:
    """The lifetime state of every date of ``days`` (``snapshot_date``) in one pass: the rows of
    ``gold.customer_lifetime_state`` for those dates, equal to ``lifetime_state`` date by date. The
    definition ``lifetime_values`` (what the history load runs) is checked against."""
    state = lifetime(known_at(daily, days), by=(SNAPSHOT,))
    return state.select(*[c for c in state.columns if c != SNAPSHOT], F.col(SNAPSHOT).alias("as_of_date"))


def snapshot(day: dt.date, subscriptions: DataFrame, customers: DataFrame, subscriptions_then: DataFrame,
             tickets: DataFrame, daily: DataFrame, state: DataFrame) -> DataFrame:
    """Features of every customer active on ``day``, as known on ``day``.

    Inputs, all as known on ``day``: the entities' states as of ``day`` (``subscriptions``, ``customers``,
    ``tickets``: ``entities.state_as_of``) and the subscriptions as of ``price_reference_day(day)``
    (``subscriptions_then``); the daily activity rows (any superset of those known on ``day``) and the
    customers' lifetime ``state`` of ``day`` (stored, or ``lifetime_state`` of ``daily``).
    """
    d = date_lit(day)
    oldest = F.lit((day - dt.timedelta(days=WINDOW_DAYS - 1)).isoformat()).cast("date")
    windows = known_on(daily, day).where(F.col("activity_date") >= oldest)

    def on(df: DataFrame) -> DataFrame:
        return df.select("*", d.alias(SNAPSHOT))

    return snapshots(on(subscriptions), on(customers), on(subscriptions_then), on(tickets), on(windows),
                     on(state.drop("as_of_date")))


def snapshots(subscriptions: DataFrame, customers: DataFrame, subscriptions_then: DataFrame, tickets: DataFrame,
              window_rows: DataFrame | None, state: DataFrame, windows: DataFrame | None = None) -> DataFrame:
    """``snapshot`` for every date at once: each input carries ``snapshot_date``, the date it is the
    state of (for ``window_rows``: the date whose window a daily row counts in, ``known_at``); the
    output holds one snapshot per date. ``snapshot`` is this with one date; the history load passes many,
    with the windows' sums computed already (``windows``: ``window_values``) instead of ``window_rows``."""
    d = F.col(SNAPSHOT)
    by = (SNAPSHOT,)
    subs = active_at(latest_subscription(subscriptions, by), d)
    base = subs.join(customers.select(SNAPSHOT, "customer_id", "country", "channel", "birth_year", "signup_date"),
                     [SNAPSHOT, "customer_id"], "left")

    # the subscription as it was 60 days earlier (first known version if it started since)
    then = subscriptions_then.select(
        SNAPSHOT, "subscription_id", F.col("monthly_price").alias("price_60d_ago"), F.col("plan").alias("plan_60d_ago"))

    ticket_counts = tickets.groupBy(SNAPSHOT, "customer_id").agg(
        F.sum(F.when(F.col("status") == "open", 1).otherwise(0)).alias("open_tickets"),
        F.sum(F.when(F.datediff(d, F.to_date("created_at")) < 30, 1).otherwise(0)).alias("tickets_30d"),
        F.sum(F.when((F.datediff(d, F.to_date("created_at")) < 90) & (F.col("category") == "billing"), 1)
              .otherwise(0)).alias("billing_tickets_90d"))

    windows = window_sums_at(window_rows) if windows is None else windows
    # the lake's first activity day as known on each date, joined in (a row per date)
    first_seen = state.groupBy(SNAPSHOT).agg(F.min("first_activity_date").alias("_first_seen"))
    life = state.select(
        SNAPSHOT, "customer_id", F.col("total_spend").cast("double").alias("total_spend"), "payments_total",
        F.datediff(d, F.col("last_payment_date")).alias("days_since_last_payment"),
        F.datediff(d, F.col("last_login_date")).alias("days_since_last_login"),
        "last_nps", F.datediff(d, F.to_date("last_nps_at")).alias("days_since_last_nps"))

    zero_fill = ["total_spend", "spend_7d", "spend_30d", "spend_90d", "payments_total", "failed_payments_30d",
                 "failed_payments_90d", "refunds_90d", "sessions_7d", "sessions_30d", "sessions_prev_30d",
                 "events_30d", "feature_uses_30d", "active_days_7d", "active_days_30d", "open_tickets",
                 "tickets_30d", "billing_tickets_90d"]
    observed = F.coalesce(F.datediff(d, F.col("_first_seen")) + 1, F.lit(0))
    keys = [SNAPSHOT, "customer_id"]
    out = (base.join(then, [SNAPSHOT, "subscription_id"], "left").join(windows, keys, "left")
           .join(life, keys, "left").join(ticket_counts, keys, "left").fillna(0, subset=zero_fill)
           .join(F.broadcast(first_seen), SNAPSHOT, "left"))
    tenure = F.datediff(d, F.coalesce(F.col("signup_date"), F.col("start_date")))
    return out.select(
        F.col("customer_id"),
        d.alias("snapshot_date"),
        F.col("plan"), F.col("contract"), F.col("monthly_price").cast("double").alias("monthly_price"),
        F.col("country"), F.col("channel"),
        (F.year(d) - F.col("birth_year")).cast("int").alias("age"),
        tenure.cast("int").alias("tenure_days"),
        observed.cast("int").alias("observed_days"),
        F.round("total_spend", 2).alias("total_spend"),
        F.round("spend_7d", 2).alias("spend_7d"), F.round("spend_30d", 2).alias("spend_30d"),
        F.round("spend_90d", 2).alias("spend_90d"),
        F.round(F.when(F.col("payments_total") > 0, F.col("total_spend") / F.col("payments_total")), 2)
        .alias("avg_transaction"),
        F.col("failed_payments_30d").cast("int"), F.col("failed_payments_90d").cast("int"),
        F.round("refunds_90d", 2).alias("refunds_90d"),
        F.col("days_since_last_payment").cast("int"),
        F.col("sessions_7d").cast("int"), F.col("sessions_30d").cast("int"),
        F.col("sessions_prev_30d").cast("int"),
        F.col("events_30d").cast("int"), F.col("feature_uses_30d").cast("int"),
        F.col("active_days_7d").cast("int"), F.col("active_days_30d").cast("int"),
        F.col("days_since_last_login").cast("int"),
        # trends, smoothed by +1 so a quiet customer reads 1.0 rather than 0/0
        F.round((F.col("sessions_30d") + 1) / (F.col("sessions_prev_30d") + 1), 4).alias("session_trend_30d"),
        F.round((F.col("sessions_7d") + 1) / (F.col("sessions_30d") * 7 / 30 + 1), 4).alias("session_trend_7d"),
        F.col("open_tickets").cast("int"), F.col("tickets_30d").cast("int"),
        F.col("billing_tickets_90d").cast("int"),
        F.col("last_nps").cast("int"), F.col("days_since_last_nps").cast("int"),
        F.round(F.when(F.col("price_60d_ago") > 0, F.col("monthly_price") / F.col("price_60d_ago") - 1)
                .otherwise(0.0), 4).alias("price_change_60d"),
        (F.coalesce(F.col("plan_60d_ago"), F.col("plan")) != F.col("plan")).alias("plan_changed_60d"),
        F.lit(FEATURE_VERSION).alias("feature_version"),
    )
