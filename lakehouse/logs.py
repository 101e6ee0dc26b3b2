"""Logging set-up shared by the CLI and the jobs: a console handler and, for jobs, a log file."""

from __future__ import annotations

import logging
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(verbose: bool = False) -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_lakehouse", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._lakehouse = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("py4j", "urllib3", "werkzeug", "hdfs"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def add_file_log(folder: Path, name: str) -> Path:
    """Also write this process's log records to ``folder/name`` (appending); return the path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    root = logging.getLogger()
    for h in root.handlers:
        if isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path.resolve():
            return path
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(handler)
    return path


class file_log:
    """Context manager: send log records to ``folder/name`` for the duration of a block."""

    def __init__(self, folder: Path, name: str):
        self.path = folder / name
        self.handler: logging.FileHandler | None = None

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handler = logging.FileHandler(self.path)
        self.handler.setFormatter(logging.Formatter(FORMAT))
        logging.getLogger().addHandler(self.handler)
        return self.path

    def __exit__(self, *exc) -> None:
        if self.handler:
            logging.getLogger().removeHandler(self.handler)
            self.handler.close()
