"""Score every active customer for the run date with models:/<name>@champion into gold.churn_scores.

    spark-submit --master local[2] --jars $(ls .jars/runtime/*.jar | paste -sd,) \
        jobs/score.py --run-date 2026-03-31 --env local

Also records feature drift (PSI against the model's training data) and, once labels have matured,
the realized performance of earlier scores.
"""

import sys

from lakehouse.job import run_job
from lakehouse.ml.scoring import score_customers


def main(argv=None) -> int:
    return run_job("score", __doc__.splitlines()[0],
                   lambda spark, settings, args: score_customers(spark, settings, args.run_date, args.run_id), argv)


if __name__ == "__main__":
    sys.exit(main())
