"""Gold layer: per-customer daily activity, point-in-time feature snapshots and churn labels."""
