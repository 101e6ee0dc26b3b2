"""PyDeequ runtime helpers. pydeequ must be imported only after SPARK_VERSION is set."""

from __future__ import annotations

import logging

from lakehouse.spark import prepare_environment

log = logging.getLogger(__name__)


def import_pydeequ():
    """Import pydeequ with its required environment in place; return the module."""
    prepare_environment()
    import pydeequ

    return pydeequ


def shutdown_deequ(spark) -> None:
    """PyDeequ starts a py4j callback server; stop it or the process hangs at exit."""
    try:
        spark.sparkContext._gateway.shutdown_callback_server()
    except Exception as exc:  # nothing started, or already stopped
        log.debug("callback server shutdown: %s", exc)
