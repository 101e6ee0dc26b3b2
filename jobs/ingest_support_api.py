"""Ingest the support_api source for one logical date into the raw zone and bronze.

    spark-submit --master local[2] --jars $(ls .jars/runtime/*.jar | paste -sd,) \
        jobs/ingest_support_api.py --run-date 2026-01-05 --env local
"""

import sys

from lakehouse.ingest.stage import ingest_source
from lakehouse.job import run_job


def main(argv=None) -> int:
    return run_job("ingest_support_api", __doc__.splitlines()[0],
                   lambda spark, settings, args: ingest_source(spark, settings, "support_api", args.run_date, args.run_id),
                   argv)


if __name__ == "__main__":
    sys.exit(main())
