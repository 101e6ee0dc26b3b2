"""The support/NPS vendor's REST API, served over HTTP on 127.0.0.1 by default.

    GET /api/v1/health                                   no auth
    GET /api/v1/<tickets|nps>?date=YYYY-MM-DD&page=N&page_size=M
        Authorization: Bearer <token>
        200 {"data": [...], "page": N, "page_size": M, "total": T, "next_page": N+1 | null}
        401 missing or wrong token; 400 bad parameters; 404 unknown resource
        429 past the rate limit, with Retry-After (seconds)
        503 injected transient failure (failure_rate); slow answers (slow_rate) sleep slow_seconds

Records are served by the date they were delivered to the vendor (late records appear on a later
date), ordered by their id, so pages are stable across calls.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import random
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request
from werkzeug.serving import make_server

log = logging.getLogger(__name__)

RESOURCES = {"tickets": "ticket_id", "nps": "response_id"}
MAX_PAGE_SIZE = 1000


class TokenBucket:
    """Rate limiter: ``rate`` requests per second with a burst of the same size."""

    def __init__(self, rate: float):
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> float:
        """Take a token; return 0 when allowed, else the seconds until one is available."""
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate


def load_store(folder: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    store: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for resource, key in RESOURCES.items():
        by_date: dict[str, list[dict[str, Any]]] = defaultdict(list)
        path = folder / f"{resource}.jsonl"
        if path.exists():
            for line in path.read_text().splitlines():
                rec = json.loads(line)
                by_date[rec.pop("_delivered_on")].append(rec)
        for recs in by_date.values():
            recs.sort(key=lambda r: (str(r.get(key)), str(r.get("updated_at") or ""), json.dumps(r, sort_keys=True)))
        store[resource] = dict(by_date)
    return store


def create_app(store: dict, token: str, rate_limit_per_s: float, failure_rate: float = 0.0,
               slow_rate: float = 0.0, slow_seconds: float = 0.0, seed: int = 0) -> Flask:
    app = Flask("support_api_simulator")
    bucket = TokenBucket(rate_limit_per_s)
    rng = random.Random(f"{seed}:api")
    rng_lock = threading.Lock()
    app.config["stats"] = stats = defaultdict(int)
    # mutable at run time, so tests can take the vendor "down" and bring it back
    app.config["faults"] = {"failure_rate": failure_rate, "slow_rate": slow_rate, "slow_seconds": slow_seconds}

    @app.get("/api/v1/health")
    def health():
        return jsonify({"status": "ok"})

    @app.get("/api/v1/<resource>")
    def listing(resource: str):
        stats["requests"] += 1
        auth = request.headers.get("Authorization", "")
        if auth != f"Bearer {token}":
            stats["401"] += 1
            return jsonify({"error": "missing or invalid bearer token"}), 401
        wait = bucket.take()
        if wait > 0:
            stats["429"] += 1
            resp = jsonify({"error": "rate limit exceeded"})
            resp.status_code = 429
            resp.headers["Retry-After"] = str(max(1, math.ceil(wait)))
            return resp
        faults = app.config["faults"]
        with rng_lock:
            fail = rng.random() < faults["failure_rate"]
            slow = rng.random() < faults["slow_rate"]
        if fail:
            stats["503"] += 1
            return jsonify({"error": "temporarily unavailable"}), 503
        if slow:
            stats["slow"] += 1
            time.sleep(faults["slow_seconds"])
        if resource not in RESOURCES:
            return jsonify({"error": f"unknown resource {resource!r}", "resources": sorted(RESOURCES)}), 404
        try:
            date = dt.date.fromisoformat(request.args["date"]).isoformat()
            page = int(request.args.get("page", "1"))
            size = int(request.args.get("page_size", "100"))
            if page < 1 or not 1 <= size <= MAX_PAGE_SIZE:
                raise ValueError("page >= 1 and 1 <= page_size <= %d" % MAX_PAGE_SIZE)
        except (KeyError, ValueError) as exc:
            return jsonify({"error": f"bad parameters: {exc}"}), 400
        recs = store.get(resource, {}).get(date, [])
        chunk = recs[(page - 1) * size: page * size]
        stats["200"] += 1
        return jsonify({"data": chunk, "page": page, "page_size": size, "total": len(recs),
                        "next_page": page + 1 if page * size < len(recs) else None})

    return app


class ApiServer:
    """Runs the API in a background thread; ``with ApiServer(...) as srv: srv.url``."""

    def __init__(self, folder: Path, token: str, host: str = "127.0.0.1", port: int = 0,
                 rate_limit_per_s: float = 50, failure_rate: float = 0.0, slow_rate: float = 0.0,
                 slow_seconds: float = 0.0, seed: int = 0):
        self.app = create_app(load_store(folder), token, rate_limit_per_s, failure_rate, slow_rate,
                              slow_seconds, seed)
        self.server = make_server(host, port, self.app, threaded=True)
        self.host, self.port = host, self.server.server_port
        self.thread = threading.Thread(target=self.server.serve_forever, name="support-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def faults(self) -> dict:
        return self.app.config["faults"]

    @property
    def stats(self) -> dict:
        return self.app.config["stats"]

    def start(self) -> "ApiServer":
        self.thread.start()
        log.info("support API simulator on %s", self.url)
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=5)

    def __enter__(self) -> "ApiServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
