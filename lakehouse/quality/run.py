"""The silver step as jobs and the CLI run it: validate and load, then always write the report."""

from __future__ import annotations

import datetime as dt
import logging

from lakehouse.config import Settings
from lakehouse.quality.report import write_report
from lakehouse.quality.silver import QualityGateError, SilverResult, run_silver

log = logging.getLogger(__name__)


def validate_and_report(spark, settings: Settings, run_date: dt.date, run_id: str | None = None,
                        tables: list[str] | None = None) -> SilverResult:
    """Run silver for ``run_date``; write the quality report whether the gates pass or not."""
    try:
        result = run_silver(spark, settings, run_date, tables, run_id)
    except QualityGateError as exc:
        where = write_report(spark, settings, run_date, exc.result.run_id, exc.result.tables)
        log.error("quality gates failed for %s; report: %s", run_date, where)
        raise
    write_report(spark, settings, run_date, result.run_id, result.tables)
    return result
