-- Usage counted by quotas and cost budgets (src/tenancy/usage.ts), one row per tenant, metric and
-- period. `used` is the sum of every replica's increments, added by each replica's periodic flush
-- (`used = used + delta`), so the row never depends on which replica flushed last. Redis (or each
-- process's memory) holds the live counter; these rows make it durable and seed it after a restart.
-- No foreign key to tenants: a flush for a tenant deleted meanwhile must not fail the whole batch.

CREATE TABLE usage_counters (
  tenant_id   text NOT NULL,
  metric      text NOT NULL,                  -- `quota:<name>` or `cost:<provider>` (cost in millionths)
  period      text NOT NULL CHECK (period IN ('day', 'month')),
  starts      date NOT NULL,                  -- first day of the UTC period
  used        bigint NOT NULL DEFAULT 0 CHECK (used >= 0),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, metric, period, starts)
);
-- Replicas read the rows changed since their last read (their seeds for counters Redis lost).
CREATE INDEX usage_counters_updated_at ON usage_counters (updated_at);
