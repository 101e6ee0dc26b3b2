"""A small HTTP endpoint over the online store: ``GET /features/<customer_id>[?features=a,b]``."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request

from lakehouse.config import Settings
from lakehouse.featurestore.store import OnlineStore

log = logging.getLogger(__name__)


def create_app(settings: Settings) -> Flask:
    app = Flask("online-features")
    store = OnlineStore(settings)

    @app.get("/features/<customer_id>")
    def features(customer_id: str):
        wanted = [f for f in request.args.get("features", "").split(",") if f] or None
        row = store.get([customer_id], wanted)[0]
        return jsonify(row), (404 if row.get("_missing") else 200)

    @app.get("/health")
    def health():
        return jsonify({"materializations": store.materializations()[-1:]})

    return app


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8770) -> None:
    from werkzeug.serving import make_server

    server = make_server(host, port, create_app(settings), threaded=True)
    print(f"online features on http://{host}:{port}/features/<customer_id> (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
