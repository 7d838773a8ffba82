-- Audit sinks and checkpoint publishing (src/audit/sinks, docs/audit-log.md "Sinks and published
-- checkpoints"): each sink's cursor (the next seq to ship) and the batches that could not be
-- delivered after every retry (the dead letters), kept until a replay delivers them.
--
-- Writers: only the holder of the lease 'audit-shipper' moves a cursor or adds a dead letter, each
-- update fenced by the lease in the same statement/transaction; any replica may replay a dead letter
-- (an admin call), claiming it first (claimed_until) so two replays do not send it at once.

CREATE TABLE audit_cursors (
  name        text PRIMARY KEY,                        -- 'sink:<name>' (or another shipper's cursor)
  position    bigint NOT NULL CHECK (position >= 0),   -- for a sink: the next seq to ship
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_dead_letters (
  id             bigserial PRIMARY KEY,
  sink           text NOT NULL,
  first_seq      bigint NOT NULL CHECK (first_seq >= 0),
  last_seq       bigint NOT NULL CHECK (last_seq >= first_seq),
  entries        integer NOT NULL CHECK (entries > 0),
  body           text NOT NULL,                        -- the JSON lines exactly as they were sent
  attempts       integer NOT NULL,                     -- tries so far (shipping, then replays)
  error          text NOT NULL,                        -- the last failure, never with a secret in it
  failed_at      timestamptz NOT NULL DEFAULT now(),
  replayed_at    timestamptz,                          -- the last failed replay
  claimed_until  timestamptz                           -- a replay in progress until then
);
CREATE INDEX audit_dead_letters_sink ON audit_dead_letters (sink, id);
