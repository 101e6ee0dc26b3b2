"""Compact the lake's small files (Delta OPTIMIZE of crowded partitions); no row changes.

    spark-submit --master local[2] --jars $(ls .jars/runtime/*.jar | paste -sd,) \
        jobs/maintenance.py --run-date 2026-03-31 --env local [--dry-run] [--tables silver.customers ...]

Which partitions count as crowded: ``maintenance.compact_min_files`` in conf (lakehouse/maintenance.py).
Runs on its own schedule (the Airflow DAG ``churn_maintenance``), away from the daily run's hours.
"""

import sys

from lakehouse.job import run_job
from lakehouse.maintenance import compact_lake


def _extra(parser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="only report what would be compacted")
    parser.add_argument("--tables", nargs="*", help="<layer>.<name> (default: every table of the lake)")


def main(argv=None) -> int:
    return run_job("maintenance", __doc__.splitlines()[0],
                   lambda spark, settings, args: compact_lake(spark, settings, args.run_date, args.run_id or "",
                                                              args.tables, args.dry_run),
                   argv, extra_args=_extra)


if __name__ == "__main__":
    sys.exit(main())
