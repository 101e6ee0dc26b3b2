-- Sample queries over the gold tables, by name. Run: lakehouse sql --file lakehouse/sql/sample_queries.sql
-- (the tests execute every statement).

-- name: top_at_risk_customers
-- The 20 active customers most likely to churn on the latest scored date, with what drives the risk.
SELECT s.customer_id, s.probability, s.risk_band, f.plan, f.tenure_days, f.sessions_30d,
       f.session_trend_30d, f.failed_payments_30d, f.open_tickets, f.last_nps
FROM gold.churn_scores s
JOIN gold.customer_daily_features f
  ON f.customer_id = s.customer_id AND f.snapshot_date = s.score_date
WHERE s.score_date = (SELECT max(score_date) FROM gold.churn_scores)
ORDER BY s.probability DESC, s.customer_id
LIMIT 20;

-- name: churn_rate_by_plan_per_month
-- Share of customers active on a snapshot date who churned within the horizon, by plan and month.
SELECT date_trunc('MONTH', l.snapshot_date) AS month, f.plan,
       count(*) AS customer_days, sum(l.churned) AS churned,
       round(avg(l.churned), 4) AS churn_rate
FROM gold.churn_labels l
JOIN gold.customer_daily_features f
  ON f.customer_id = l.customer_id AND f.snapshot_date = l.snapshot_date
GROUP BY 1, 2
ORDER BY 1, 2;

-- name: feature_distributions
-- Quartiles of key features on the latest snapshot.
SELECT 'sessions_30d' AS feature, percentile_approx(sessions_30d, array(0.25, 0.5, 0.75)) AS quartiles,
       avg(sessions_30d) AS mean
FROM gold.customer_daily_features WHERE snapshot_date = (SELECT max(snapshot_date) FROM gold.customer_daily_features)
UNION ALL
SELECT 'spend_30d', percentile_approx(spend_30d, array(0.25, 0.5, 0.75)), avg(spend_30d)
FROM gold.customer_daily_features WHERE snapshot_date = (SELECT max(snapshot_date) FROM gold.customer_daily_features)
UNION ALL
SELECT 'tenure_days', percentile_approx(tenure_days, array(0.25, 0.5, 0.75)), avg(tenure_days)
FROM gold.customer_daily_features WHERE snapshot_date = (SELECT max(snapshot_date) FROM gold.customer_daily_features);

-- name: daily_active_customers
-- Customers in each snapshot and how many had a session in the last 7 days.
SELECT snapshot_date, count(*) AS active_customers, sum(CASE WHEN sessions_7d > 0 THEN 1 ELSE 0 END) AS engaged_7d
FROM gold.customer_daily_features
GROUP BY snapshot_date
ORDER BY snapshot_date;
