"""Train and compare churn models on labelled feature-store snapshots; register the best in MLflow.

    spark-submit --master local[2] --jars $(ls .jars/runtime/*.jar | paste -sd,) \
        jobs/train.py --run-date 2026-03-31 --env local

The run date bounds the labels used (those known by that date). The new model becomes
`models:/<name>@champion` only if it beats the current champion on the same out-of-time window.
"""

import sys

from lakehouse.jobrunner import run_job
from lakehouse.ml.train import train_models


def main(argv=None) -> int:
    return run_job("train", __doc__.splitlines()[0],
                   lambda spark, settings, args: train_models(spark, settings, args.run_date, args.run_id), argv)


if __name__ == "__main__":
    sys.exit(main())
