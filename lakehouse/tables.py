"""Names and places of the lake's tables and raw partitions, in one spot.

Delta tables live at ``<lake>/<layer>/<name>``; raw files at
``<lake>/raw/source=<source>/type=<type>/date=<YYYY-MM-DD>/``.
"""

from __future__ import annotations

import datetime as dt

AUDIT_TABLE = ("ops", "ingest_audit")


def bronze_table(source: str, type_: str) -> str:
    """``crm`` + ``customers`` -> ``crm_customers``; ``support_api`` + ``nps`` -> ``support_nps``."""
    prefix = source[:-4] if source.endswith("_api") else source
    return f"{prefix}_{type_}"


def raw_partition(source: str, type_: str, run_date: dt.date) -> str:
    return f"raw/source={source}/type={type_}/date={run_date.isoformat()}"
