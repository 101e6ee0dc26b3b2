"""Churn models: training set, preprocessing, training with MLflow, registry, scoring, monitoring."""
