"""Drift monitoring on small frames: why the reference is what scoring reads, not the training rows."""

import datetime as dt
import random

from lakehouse.ml import monitoring


def test_a_model_scored_near_its_latest_training_dates_is_not_flagged_for_the_lakes_filling_weeks(spark):
    rng = random.Random(3)
    dates = [dt.date(2026, 1, 1) + dt.timedelta(days=7 * i) for i in range(16)]  # days 0..105 of the lake

    def spend(day):  # a 90-day window filling for the lake's first weeks, full afterwards
        days = min((day - dates[0]).days + 1, 90)
        return round(rng.gauss(3.0, 0.5) * days, 2)

    training = spark.createDataFrame([(f"C{i}", d, spend(d)) for d in dates for i in range(300)],
                                     "customer_id string, as_of date, spend_90d double")
    scoring_day = dates[-1] + dt.timedelta(days=30)
    scoring = spark.createDataFrame([(f"C{i}", spend(scoring_day)) for i in range(300)],
                                    "customer_id string, spend_90d double")
    # the reference scoring_reference_rows takes: the rows scoring reads on the latest dates up to training
    at_training = spark.createDataFrame([(f"C{i}", spend(dates[-1] + dt.timedelta(days=d))) for d in (-2, -1, 0)
                                         for i in range(300)], "customer_id string, spend_90d double")
    against_all = monitoring.feature_drift(scoring, monitoring.drift_reference(training, ["spend_90d"]))
    against_latest = monitoring.feature_drift(scoring, monitoring.drift_reference(at_training, ["spend_90d"]))
    assert against_all["spend_90d"] > 0.2        # every training row: flagged, though nothing moved
    assert against_latest["spend_90d"] < 0.2     # what scoring sees: not flagged


def test_psi_is_zero_for_equal_shares_and_grows_with_the_shift():
    assert monitoring.psi([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert 0 < monitoring.psi([0.5, 0.5], [0.6, 0.4]) < monitoring.psi([0.5, 0.5], [0.9, 0.1])
