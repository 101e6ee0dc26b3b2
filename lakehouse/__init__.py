"""Churn Lakehouse: a Spark + Delta lakehouse pipeline for subscription churn.

All pipeline logic lives in this package; ``jobs/`` holds thin ``spark-submit`` entry points and
``dags/`` only schedules them.
"""

__version__ = "0.1.0"
