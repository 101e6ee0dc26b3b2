-- Gold tables: the schema of record. `lakehouse sql setup` (and every gold job at start) runs this
-- file: CREATE ... IF NOT EXISTS registers each table by name in the session catalog at its lake
-- location (creating it the first time); ADD CONSTRAINT statements are skipped when already present.
-- ${lake} is replaced by the configured lake root.

CREATE SCHEMA IF NOT EXISTS gold COMMENT 'Customer-level tables for analytics, features and scores';

CREATE TABLE IF NOT EXISTS gold.customer_activity_daily (
  customer_id    STRING    NOT NULL COMMENT 'Customer business key (silver)',
  activity_date  DATE      NOT NULL COMMENT 'Day the activity happened (event time, UTC)',
  ingest_date    DATE      NOT NULL COMMENT 'Day the rows arrived in silver; partition key',
  sessions       BIGINT    NOT NULL COMMENT 'Distinct web sessions',
  events         BIGINT    NOT NULL COMMENT 'Web events of any type',
  feature_uses   BIGINT    NOT NULL COMMENT 'feature_use events',
  logins         BIGINT    NOT NULL COMMENT 'login events',
  paid_amount    DOUBLE    NOT NULL COMMENT 'Sum of paid transaction amounts',
  paid_count     BIGINT    NOT NULL COMMENT 'Paid transactions',
  failed_count   BIGINT    NOT NULL COMMENT 'Failed payment attempts',
  refund_amount  DOUBLE    NOT NULL COMMENT 'Sum of refunded amounts',
  nps_score      INT                COMMENT 'Last NPS score given that day (0-10), null if none',
  nps_at         TIMESTAMP          COMMENT 'When that NPS response was submitted'
) USING DELTA
PARTITIONED BY (ingest_date)
LOCATION '${lake}/gold/customer_activity_daily'
COMMENT 'Per customer and day activity; the incremental base of the windowed features';

ALTER TABLE gold.customer_activity_daily ADD CONSTRAINT activity_non_negative
  CHECK (sessions >= 0 AND events >= 0 AND paid_amount >= 0 AND failed_count >= 0);

CREATE TABLE IF NOT EXISTS gold.customer_lifetime_state (
  customer_id          STRING        NOT NULL COMMENT 'Customer business key',
  total_spend          DECIMAL(20,2)          COMMENT 'Paid amount since records began',
  payments_total       BIGINT                 COMMENT 'Paid transactions since records began',
  last_payment_date    DATE                   COMMENT 'Last day with a paid transaction',
  last_login_date      DATE                   COMMENT 'Last day with a login',
  last_nps             INT                    COMMENT 'Latest NPS score (0-10)',
  last_nps_at          TIMESTAMP              COMMENT 'When the latest NPS response was submitted',
  first_activity_date  DATE                   COMMENT 'First day with any activity row',
  as_of_date           DATE          NOT NULL COMMENT 'State as known on this date; partition key'
) USING DELTA
PARTITIONED BY (as_of_date)
LOCATION '${lake}/gold/customer_lifetime_state'
COMMENT 'All-history aggregates per customer as of each date: state(D) = state(D-1) + rows visible on D';

CREATE TABLE IF NOT EXISTS gold.customer_daily_features (
  customer_id             STRING  NOT NULL COMMENT 'Customer business key',
  snapshot_date           DATE    NOT NULL COMMENT 'As-of date D: only data with event time <= D that had arrived by D',
  plan                    STRING           COMMENT 'Plan on D (basic, standard, premium)',
  contract                STRING           COMMENT 'monthly or annual',
  monthly_price           DOUBLE           COMMENT 'Price per month on D',
  country                 STRING           COMMENT 'ISO country',
  channel                 STRING           COMMENT 'Acquisition channel',
  age                     INT              COMMENT 'Years since birth year',
  tenure_days             INT     NOT NULL COMMENT 'Days since signup',
  observed_days           INT     NOT NULL COMMENT 'Days of activity history the lake holds up to D',
  total_spend             DOUBLE  NOT NULL COMMENT 'Paid amount since records began',
  spend_7d                DOUBLE  NOT NULL COMMENT 'Paid amount, D-6..D',
  spend_30d               DOUBLE  NOT NULL COMMENT 'Paid amount, D-29..D',
  spend_90d               DOUBLE  NOT NULL COMMENT 'Paid amount, D-89..D',
  avg_transaction         DOUBLE           COMMENT 'total_spend / paid transactions; null if none',
  failed_payments_30d     INT     NOT NULL COMMENT 'Failed payment attempts, D-29..D',
  failed_payments_90d     INT     NOT NULL COMMENT 'Failed payment attempts, D-89..D',
  refunds_90d             DOUBLE  NOT NULL COMMENT 'Refunded amount, D-89..D',
  days_since_last_payment INT              COMMENT 'Days since the last paid transaction; null if none',
  sessions_7d             INT     NOT NULL COMMENT 'Web sessions, D-6..D',
  sessions_30d            INT     NOT NULL COMMENT 'Web sessions, D-29..D',
  sessions_prev_30d       INT     NOT NULL COMMENT 'Web sessions, D-59..D-30',
  events_30d              INT     NOT NULL COMMENT 'Web events, D-29..D',
  feature_uses_30d        INT     NOT NULL COMMENT 'feature_use events, D-29..D',
  active_days_7d          INT     NOT NULL COMMENT 'Days with a session, D-6..D',
  active_days_30d         INT     NOT NULL COMMENT 'Days with a session, D-29..D',
  days_since_last_login   INT              COMMENT 'Days since the last login; null if never seen',
  session_trend_30d       DOUBLE  NOT NULL COMMENT '(sessions_30d + 1) / (sessions_prev_30d + 1)',
  session_trend_7d        DOUBLE  NOT NULL COMMENT '(sessions_7d + 1) / (sessions_30d * 7/30 + 1)',
  open_tickets            INT     NOT NULL COMMENT 'Support tickets open at the end of D',
  tickets_30d             INT     NOT NULL COMMENT 'Tickets opened, D-29..D',
  billing_tickets_90d     INT     NOT NULL COMMENT 'Billing tickets opened, D-89..D',
  last_nps                INT              COMMENT 'Most recent NPS score (0-10); null if none',
  days_since_last_nps     INT              COMMENT 'Days since that response',
  price_change_60d        DOUBLE  NOT NULL COMMENT 'Relative price change against 60 days earlier',
  plan_changed_60d        BOOLEAN          COMMENT 'Plan differs from 60 days earlier',
  feature_version         INT     NOT NULL COMMENT 'Version of these definitions (lakehouse.gold.features)'
) USING DELTA
PARTITIONED BY (snapshot_date)
LOCATION '${lake}/gold/customer_daily_features'
COMMENT 'Point-in-time feature snapshot of every customer active on snapshot_date';

ALTER TABLE gold.customer_daily_features ADD CONSTRAINT features_non_negative
  CHECK (tenure_days >= 0 AND total_spend >= 0 AND sessions_30d >= 0 AND open_tickets >= 0);
ALTER TABLE gold.customer_daily_features ADD CONSTRAINT features_nps_range
  CHECK (last_nps IS NULL OR (last_nps BETWEEN 0 AND 10));

CREATE TABLE IF NOT EXISTS gold.churn_labels (
  customer_id    STRING NOT NULL COMMENT 'Customer business key',
  snapshot_date  DATE   NOT NULL COMMENT 'Snapshot the label belongs to; partition key',
  horizon_days   INT    NOT NULL COMMENT 'H: the window after snapshot_date',
  churned        INT    NOT NULL COMMENT '1 if the subscription ended in (snapshot_date, snapshot_date + H]',
  churn_date     DATE            COMMENT 'The end date when churned',
  labelled_on    DATE   NOT NULL COMMENT 'Run date that wrote the label (snapshot_date + H)'
) USING DELTA
PARTITIONED BY (snapshot_date)
LOCATION '${lake}/gold/churn_labels'
COMMENT 'Churn outcome per (customer, snapshot date), written once the horizon has passed';

ALTER TABLE gold.churn_labels ADD CONSTRAINT labels_binary CHECK (churned IN (0, 1));
ALTER TABLE gold.churn_labels ADD CONSTRAINT labels_after_horizon
  CHECK (labelled_on >= date_add(snapshot_date, horizon_days));

CREATE TABLE IF NOT EXISTS gold.churn_scores (
  customer_id    STRING NOT NULL COMMENT 'Customer business key',
  score_date     DATE   NOT NULL COMMENT 'Run date scored (features as of this date); partition key',
  probability    DOUBLE NOT NULL COMMENT 'Predicted probability of churn within the label horizon',
  risk_band      STRING NOT NULL COMMENT 'high / medium / low (thresholds from the model run)',
  model_name     STRING NOT NULL COMMENT 'Registered model name',
  model_version  STRING NOT NULL COMMENT 'Registered model version used',
  run_id         STRING NOT NULL COMMENT 'Pipeline run that scored'
) USING DELTA
PARTITIONED BY (score_date)
LOCATION '${lake}/gold/churn_scores'
COMMENT 'Daily churn scores of active customers by the champion model';

ALTER TABLE gold.churn_scores ADD CONSTRAINT scores_probability CHECK (probability >= 0 AND probability <= 1);

CREATE TABLE IF NOT EXISTS gold.customer_analysis (
  customer_id            STRING NOT NULL COMMENT 'Customer business key',
  plan                   STRING          COMMENT 'Plan of the latest subscription',
  contract               STRING          COMMENT 'monthly or annual',
  monthly_price          DOUBLE          COMMENT 'Price per month',
  country                STRING          COMMENT 'ISO country',
  region                 STRING          COMMENT 'EU, UK or NA',
  channel                STRING          COMMENT 'Acquisition channel',
  age                    INT             COMMENT 'Years since birth year',
  signup_date            DATE            COMMENT 'Signup (or subscription start)',
  tenure_days            INT             COMMENT 'Days from signup to churn, or to as_of if still active',
  total_spend            DOUBLE NOT NULL COMMENT 'Paid amount since records began',
  sessions_30d           INT    NOT NULL COMMENT 'Web sessions in the 30 days before as_of',
  active_days_30d        INT    NOT NULL COMMENT 'Days with a session in the 30 days before as_of',
  failed_payments        INT    NOT NULL COMMENT 'Failed payment attempts since records began',
  tickets                INT    NOT NULL COMMENT 'Support tickets since records began',
  days_since_last_login  INT             COMMENT 'Days since the last login; null if never seen',
  churned                INT    NOT NULL COMMENT '1 if the subscription ended on or before as_of',
  churn_date             DATE            COMMENT 'When it ended',
  as_of                  DATE   NOT NULL COMMENT 'The date the table describes'
) USING DELTA
LOCATION '${lake}/gold/customer_analysis'
COMMENT 'One clean row per customer known by as_of (active or churned), for EDA; rebuilt by lakehouse eda';
