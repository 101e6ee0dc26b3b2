"""Development tooling: benchmarks, the demo, the walkthrough, the local cluster, the backfill check
and synthetic data. It imports the core; the core never imports it."""
