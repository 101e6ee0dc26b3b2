"""Load a range of dates as history (``--from`` to ``--run-date``): ingest, silver, gold set-based, online store.

    spark-submit --master local[2] --jars $(ls .jars/runtime/*.jar | paste -sd,) \
        jobs/backfill.py --from 2026-01-01 --run-date 2026-03-31 --env local

What it does and how it equals daily runs: lakehouse/pipeline.py (``load_history``), docs/history-load.md.
"""

import sys

from lakehouse.job import parse_date, run_job
from lakehouse.pipeline import HISTORY_STAGES, load_history


def _args(parser) -> None:
    parser.add_argument("--from", dest="first", required=True, type=parse_date,
                        help="first date of the range (the last is --run-date)")
    parser.add_argument("--stages", default=",".join(HISTORY_STAGES), help="comma-separated, from: "
                        + ", ".join(HISTORY_STAGES))


def main(argv=None) -> int:
    return run_job("backfill", __doc__.splitlines()[0],
                   lambda spark, settings, args: load_history(spark, settings, args.first, args.run_date,
                                                              args.stages.split(","), args.run_id, record=False),
                   argv, extra_args=_args)


if __name__ == "__main__":
    sys.exit(main())
