"""The ``lakehouse`` command line. ``lakehouse --help`` lists the subcommands.

Foreseeable problems (bad config, unreachable lake or source) end with one ``error:`` line and
exit code 2; a ``-v`` flag adds debug logging.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from lakehouse import logs
from lakehouse.config import Settings, load_settings
from lakehouse.errors import LakehouseError

log = logging.getLogger("lakehouse")


def _settings(args) -> Settings:
    return load_settings(args.env)


# ---- config / check ---------------------------------------------------------------------------
def cmd_config(args) -> int:
    settings = _settings(args)
    print(json.dumps(settings.model_dump(mode="json"), indent=2))
    return 0


def cmd_check(args) -> int:
    from lakehouse.storage import storage_for

    settings = _settings(args)
    storage_for(settings).check()
    print(f"ok: env={settings.env} lake={settings.lake_uri}")
    return 0


# ---- simulator --------------------------------------------------------------------------------
def _sim_config(settings: Settings, args):
    sim = settings.simulator
    updates = {}
    if args.customers:
        updates["customers"] = args.customers
    if args.days:
        updates["days"] = args.days
    if args.seed is not None:
        updates["seed"] = args.seed
    if args.scale:
        updates["customers"] = int(updates.get("customers", sim.customers) * args.scale)
    return sim.model_copy(update=updates)


def cmd_simulate_generate(args) -> int:
    from lakehouse.simulator.systems import generate_sources

    settings = _settings(args)
    sim = _sim_config(settings, args)
    out = settings.path(args.output or sim.output_dir)
    started = time.perf_counter()
    summary = generate_sources(sim, out, postgres_url=args.postgres_url)
    print(json.dumps(summary, indent=2))
    print(f"sources written to {out} in {time.perf_counter() - started:.1f}s")
    return 0


def cmd_simulate_serve_api(args) -> int:
    import os

    from lakehouse.simulator.api import ApiServer

    settings = _settings(args)
    api = settings.simulator.api
    token = os.environ.get(api.token_env)
    if not token:
        raise LakehouseError(f"set {api.token_env} to the token the API should require")
    folder = settings.path(settings.simulator.output_dir) / "support"
    server = ApiServer(folder, token, host=api.host, port=args.port or api.port,
                       rate_limit_per_s=api.rate_limit_per_s, failure_rate=api.failure_rate,
                       slow_rate=api.slow_rate, slow_seconds=api.slow_seconds, seed=settings.simulator.seed)
    print(f"support API simulator on {server.url} (Ctrl-C to stop)")
    try:
        server.server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


# ---- demo -------------------------------------------------------------------------------------
def cmd_demo(args) -> int:
    from lakehouse import demo

    settings = _settings(args)
    return demo.run_demo(settings, days=args.days)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lakehouse", description="Churn Lakehouse pipeline commands")
    p.add_argument("--env", default="local", help="configuration overlay under conf/ (default: local)")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("config", help="print the merged, validated configuration")
    s.set_defaults(func=cmd_config)
    s = sub.add_parser("check", help="validate configuration and check that the lake root is usable")
    s.set_defaults(func=cmd_check)

    sim = sub.add_parser("simulate", help="the simulated source systems").add_subparsers(dest="sim", required=True)
    s = sim.add_parser("generate", help="simulate the business and write every source system's data")
    s.add_argument("--customers", type=int)
    s.add_argument("--days", type=int)
    s.add_argument("--scale", type=float, help="multiply the configured number of customers")
    s.add_argument("--seed", type=int)
    s.add_argument("--output", help="folder (default: simulator.output_dir)")
    s.add_argument("--postgres-url", help="also load the CRM tables into PostgreSQL (postgresql://...)")
    s.set_defaults(func=cmd_simulate_generate)
    s = sim.add_parser("serve-api", help="serve the support/NPS vendor API until interrupted")
    s.add_argument("--port", type=int)
    s.set_defaults(func=cmd_simulate_serve_api)

    s = sub.add_parser("demo", help="generate the sources and run the pipeline end to end")
    s.add_argument("--days", type=int, help="only the first N days (default: all simulated days)")
    s.set_defaults(func=cmd_demo)

    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logs.configure(args.verbose)
    try:
        return args.func(args)
    except LakehouseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
