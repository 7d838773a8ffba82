-- The audit log (src/audit, docs/audit-log.md): events accepted but not yet in the tree (the store
-- outbox), the entries of the Merkle tree in log order, the signed checkpoints, and the tree's
-- frontier so that an append costs O(log n) hashes and never rereads the log.
--
-- Writers: every replica inserts into audit_outbox (ON CONFLICT (id) DO NOTHING: a re-forwarded
-- event is a no-op); only the holder of the lease 'audit-sequencer' moves rows into audit_entries,
-- in one transaction per batch that also locks and updates audit_tree, so seq is one linear log.

CREATE TABLE audit_outbox (
  id           text PRIMARY KEY,                 -- the event's unique id (uuid, or admin-change-<id>)
  pos          bigserial UNIQUE,                 -- arrival order: the sequencer integrates in this order
  replica      text NOT NULL,                    -- who accepted it (a replica id, or 'store' for the trigger)
  received_at  timestamptz NOT NULL DEFAULT now(),
  entry        jsonb NOT NULL CHECK (jsonb_typeof(entry) = 'object')
);

CREATE TABLE audit_entries (
  seq        bigint PRIMARY KEY CHECK (seq >= 0),   -- the leaf index
  event_id   text NOT NULL UNIQUE,                  -- an event is integrated once, whoever forwards it again
  entry      jsonb NOT NULL,                        -- the leaf data is its RFC 8785 form
  leaf_hash  bytea NOT NULL CHECK (length(leaf_hash) = 32),
  at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_entries_at ON audit_entries (at);

CREATE TABLE audit_checkpoints (
  tree_size  bigint PRIMARY KEY CHECK (tree_size >= 0),
  note       text NOT NULL,                         -- the signed note (C2SP tlog-checkpoint + signed-note)
  at         timestamptz NOT NULL DEFAULT now()
);

-- One row: the tree's size and its frontier (the perfect-subtree roots, largest first, one per set
-- bit of size). `capture`: admin changes are copied into the outbox (set once audit was enabled).
CREATE TABLE audit_tree (
  id          smallint PRIMARY KEY CHECK (id = 1),
  size        bigint NOT NULL DEFAULT 0 CHECK (size >= 0),
  hashes      bytea NOT NULL DEFAULT '\x'::bytea CHECK (length(hashes) % 32 = 0),  -- 32 bytes each, concatenated
  capture     boolean NOT NULL DEFAULT false,
  updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO audit_tree (id) VALUES (1);

-- Admin changes reach the log from the transaction that made them: the row of admin_changes and its
-- outbox row commit together or not at all, so no admin change is ever lost (nor audited without
-- having happened).
CREATE FUNCTION sluice_audit_admin_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM audit_tree WHERE id = 1 AND capture) THEN
    INSERT INTO audit_outbox (id, replica, entry) VALUES (
      'admin-change-' || NEW.id,
      'store',
      jsonb_build_object(
        'id', 'admin-change-' || NEW.id,
        'type', 'admin_change',
        'at', to_char(NEW.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
        'changeId', NEW.id::text,
        'actor', NEW.actor,
        'role', NEW.role,
        'action', NEW.action,
        'target', NEW.target,
        'before', NEW.before,
        'after', NEW.after
      )
    ) ON CONFLICT (id) DO NOTHING;
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER admin_changes_audited AFTER INSERT ON admin_changes
  FOR EACH ROW EXECUTE FUNCTION sluice_audit_admin_change();
