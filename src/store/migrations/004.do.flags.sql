-- Feature flags (src/delivery/flags): one row per flag, its definition as JSON (variants, rules,
-- rollout), the bucketing version it keeps for life, and a revision that grows with every change.
-- Every change is recorded in admin_changes (who, before, after) in the same transaction, and
-- announced on 'sluice_flags' so that each replica rebuilds its in-memory flag snapshot.

CREATE TABLE flags (
  key         text PRIMARY KEY CHECK (key ~ '^[a-z0-9][a-z0-9_.-]{0,127}$'),
  spec        jsonb NOT NULL CHECK (jsonb_typeof(spec) = 'object'),
  bucketing   text NOT NULL,                    -- kept for the life of the flag (docs/bucketing.md)
  revision    bigint NOT NULL DEFAULT 1,        -- every change +1
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now(),
  updated_by  text NOT NULL
);

-- History reads a flag's changes by target.
CREATE INDEX admin_changes_target ON admin_changes (target, id);

CREATE FUNCTION sluice_notify_flags() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('sluice_flags', lower(TG_OP));
  RETURN NULL;
END $$;
CREATE TRIGGER flags_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON flags
  FOR EACH STATEMENT EXECUTE FUNCTION sluice_notify_flags();
