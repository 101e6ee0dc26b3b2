"""What every ``lakehouse`` subcommand shares: its settings, its one Spark session, argument types and
a table printer."""

from __future__ import annotations

import argparse
import datetime as dt
from contextlib import contextmanager

from lakehouse.config import Settings, load_settings


def settings_of(args) -> Settings:
    return load_settings(args.env)


@contextmanager
def spark_session(settings: Settings, name: str):
    """The Spark session of one command, stopped however the command ends (with PyDeequ's callback
    server, which otherwise keeps the process alive)."""
    from lakehouse.quality.runtime import shutdown_deequ
    from lakehouse.spark import build_session

    spark = build_session(settings, name)
    try:
        yield spark
    finally:
        shutdown_deequ(spark)
        spark.stop()


def print_rows(rows: list[dict]) -> None:
    if not rows:
        print("(no rows)")
        return
    cols = list(rows[0])
    widths = {c: max(len(c), *(len(str(r.get(c))) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r.get(c)).ljust(widths[c]) for c in cols))


def dates(value: str) -> list[dt.date]:
    """An argparse type: YYYY-MM-DD or an inclusive range YYYY-MM-DD:YYYY-MM-DD."""
    from lakehouse.job import parse_date

    first, _, last = value.partition(":")
    start, end = parse_date(first), parse_date(last or first)
    if end < start:
        raise argparse.ArgumentTypeError(f"{value!r}: the range ends before it starts (FIRST:LAST, FIRST <= LAST)")
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def numbers(kind: type, what: str):
    """An argparse type: a comma-separated list of positive numbers of ``kind`` (int or float)."""
    def parse(value: str) -> list:
        try:
            found = [kind(x) for x in value.split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a comma-separated list of {what}") from None
        if any(n <= 0 for n in found):
            raise argparse.ArgumentTypeError(f"{value!r}: every {what[:-1] if what.endswith('s') else what} "
                                             "must be above 0")
        return found
    return parse


COUNTS = numbers(int, "whole numbers")
