-- Tenants, their API keys, and the record of administrative changes (the audit log to come).
-- Applied by src/store/migrate.ts (postgrator) inside one transaction under an advisory lock.

CREATE TABLE tenants (
  id          text PRIMARY KEY CHECK (id ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
  name        text NOT NULL,
  region      text,
  plan        text,
  labels      jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(labels) = 'object'),
  status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
  id            text PRIMARY KEY,               -- the public key id, the part between sk_ and the secret
  tenant_id     text NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
  name          text NOT NULL,
  prefix        text NOT NULL,                  -- the printable, non-secret start of the key (sk_<id>_)
  secret_hash   bytea NOT NULL CHECK (length(secret_hash) = 32), -- SHA-256 of the secret
  scopes        text[] NOT NULL DEFAULT '{}',
  expires_at    timestamptz,
  revoked_at    timestamptz,
  created_at    timestamptz NOT NULL DEFAULT now(),
  last_used_at  timestamptz
);
CREATE INDEX api_keys_tenant_id ON api_keys (tenant_id);

CREATE TABLE admin_changes (
  id      bigserial PRIMARY KEY,
  at      timestamptz NOT NULL DEFAULT now(),
  actor   text NOT NULL,
  role    text NOT NULL,
  action  text NOT NULL,
  target  text NOT NULL,
  before  jsonb,
  after   jsonb
);
CREATE INDEX admin_changes_at ON admin_changes (at);

-- Every committed change to tenants or keys is announced on 'sluice_changes' so that each replica
-- rebuilds its in-memory snapshot. Statement level: a bulk change sends one notification per
-- statement, and identical payloads in one transaction are folded into one by PostgreSQL.
CREATE FUNCTION sluice_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('sluice_changes', json_build_object('table', TG_TABLE_NAME, 'op', lower(TG_OP))::text);
  RETURN NULL;
END;
$$;

CREATE TRIGGER tenants_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenants
  FOR EACH STATEMENT EXECUTE FUNCTION sluice_notify_change();
CREATE TRIGGER api_keys_changed AFTER INSERT OR DELETE OR TRUNCATE ON api_keys
  FOR EACH STATEMENT EXECUTE FUNCTION sluice_notify_change();
-- Updating only last_used_at (bookkeeping) must not make every replica reload.
CREATE TRIGGER api_keys_updated AFTER UPDATE OF tenant_id, name, prefix, secret_hash, scopes, expires_at, revoked_at ON api_keys
  FOR EACH STATEMENT EXECUTE FUNCTION sluice_notify_change();
