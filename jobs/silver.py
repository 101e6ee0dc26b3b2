"""Validate one logical date's bronze rows with PyDeequ into silver (quarantine, metrics, report).

    spark-submit --master local[2] --jars $(ls .jars/runtime/*.jar | paste -sd,) \
        jobs/silver.py --run-date 2026-01-05 --env local

Exit code 2 when an error-level quality rule fails: downstream jobs must not run for that date.
"""

import sys

from lakehouse.job import run_job
from lakehouse.silver.stage import validate_and_report


def main(argv=None) -> int:
    return run_job("silver", __doc__.splitlines()[0],
                   lambda spark, settings, args: validate_and_report(spark, settings, args.run_date, args.run_id),
                   argv)


if __name__ == "__main__":
    sys.exit(main())
