"""Build gold for one logical date: the activity slice that arrived, the feature snapshot, matured labels.

    spark-submit --master local[2] --jars $(ls .jars/runtime/*.jar | paste -sd,) \
        jobs/gold.py --run-date 2026-01-05 --env local
"""

import sys

from lakehouse.gold.stage import build_gold
from lakehouse.job import run_job


def main(argv=None) -> int:
    return run_job("gold", __doc__.splitlines()[0],
                   lambda spark, settings, args: build_gold(spark, settings, args.run_date, args.run_id), argv)


if __name__ == "__main__":
    sys.exit(main())
