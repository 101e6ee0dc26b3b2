"""Failure alerts for the churn DAGs: always a log record, plus an optional webhook.

Set the Airflow Variable ``churn_alert_webhook`` (a URL that accepts a JSON POST, e.g. a chat
incoming-webhook) to be notified; without it the alert is only logged.
"""

from __future__ import annotations

import json
import logging

log = logging.getLogger("churn.alerts")


def alert_on_failure(context) -> None:
    ti = context.get("task_instance")
    payload = {
        "dag": getattr(ti, "dag_id", None),
        "task": getattr(ti, "task_id", None),
        "logical_date": str(context.get("logical_date") or context.get("ds")),
        "try_number": getattr(ti, "try_number", None),
        "error": str(context.get("exception"))[:500],
    }
    log.error("ALERT churn pipeline task failed: %s", json.dumps(payload))
    try:
        from airflow.sdk import Variable

        url = Variable.get("churn_alert_webhook", default=None)
    except Exception:  # no metadata DB (e.g. parsing in a test): logging is the alert
        url = None
    if url:
        import requests

        try:
            requests.post(url, json=payload, timeout=10)
        except requests.RequestException as exc:
            log.error("alert webhook %s failed: %s", url, exc)


def alert_deadline_missed(**context) -> None:
    """Deadline callback: the DAG run is still running past its deadline (runs on the executor)."""
    run = context.get("dag_run") or {}
    payload = {"alert": "deadline missed", "dag": getattr(run, "dag_id", None) or context.get("dag_id"),
               "run_id": getattr(run, "run_id", None) or context.get("run_id"),
               "deadline": str(context.get("deadline") or "")}
    log.error("ALERT churn pipeline run late: %s", json.dumps(payload, default=str))
