"""Train and compare churn models on labelled feature-store snapshots; register the best in MLflow.

    spark-submit --master local[2] --jars $(ls .jars/runtime/*.jar | paste -sd,) \
        jobs/train.py --run-date 2026-03-31 --env local

The run date bounds the labels used (those known by that date). The new model becomes
`models:/<name>@champion` only if it beats the current champion on the same out-of-time window.

With --only-if-flagged (the daily DAG's retrain task) it trains only when that date's scoring
flagged feature drift or there is no champion yet and enough labels exist; otherwise it logs why
not and succeeds.
"""

import sys

from lakehouse.job import run_job
from lakehouse.ml.train import train_if_flagged, train_models


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    only_if_flagged = "--only-if-flagged" in argv
    if only_if_flagged:
        argv.remove("--only-if-flagged")
    train = train_if_flagged if only_if_flagged else train_models
    return run_job("train", __doc__.splitlines()[0],
                   lambda spark, settings, args: train(spark, settings, args.run_date, args.run_id), argv)


if __name__ == "__main__":
    sys.exit(main())
