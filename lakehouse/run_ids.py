"""Run ids, spelled one way by every job and stage: ``<job>-<YYYY-MM-DD>-<8 hex digits>``.

A run id ties a Delta commit (its ``userMetadata``), the run ledger, ``ops/task_runs`` and the logs to
one execution. It is the one value a job may draw at random: it names a run, it is never data.
"""

from __future__ import annotations

import datetime as dt
import uuid


def new_run_id(job: str, run_date: dt.date) -> str:
    return f"{job}-{run_date.isoformat()}-{uuid.uuid4().hex[:8]}"
