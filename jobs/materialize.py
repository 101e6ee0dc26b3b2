"""Materialize the latest feature values as of the run date into the online store (SQLite by default).

    spark-submit --master local[2] --jars $(ls .jars/runtime/*.jar | paste -sd,) \
        jobs/materialize.py --run-date 2026-01-05 --env local
"""

import sys

from lakehouse.featurestore.store import materialize
from lakehouse.job import run_job


def main(argv=None) -> int:
    return run_job("materialize", __doc__.splitlines()[0],
                   lambda spark, settings, args: materialize(spark, settings, args.run_date, run_id=args.run_id or ""),
                   argv)


if __name__ == "__main__":
    sys.exit(main())
