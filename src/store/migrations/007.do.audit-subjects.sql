-- Data subjects of the audit log (src/audit/subjects, docs/audit-log.md "Erasure (crypto-shredding)").
-- Personal fields of audit entries are sealed (AES-256-GCM) under a key per data subject; the leaf
-- holds only the subject's random pseudonym and ciphertext. The keys live here, outside the log:
-- deleting a subject's row destroys its key and the only link from its identifier to its pseudonym,
-- so its sealed fields can no longer be read anywhere, while every leaf hash and proof is unchanged.

CREATE TABLE audit_subject_keys (
  pseudonym   text PRIMARY KEY,                         -- 'sp_' + 22 base64url chars (16 random bytes): what leaves name
  lookup      bytea NOT NULL UNIQUE CHECK (length(lookup) = 32),  -- HMAC-SHA256 of the subject identifier: finds the row, never reveals it
  key         bytea NOT NULL,                           -- the 32-byte AES key, or its AES-256-GCM wrap under the KEK (iv ‖ ct ‖ tag, 60 bytes)
  kek_id      text,                                     -- the wrapping KEK's id (first 8 hex of its SHA-256); NULL: stored unwrapped
  created_at  timestamptz NOT NULL DEFAULT now()
);

-- Entries naming a subject (the subject export, lookups by actor): every sealed entry lists the
-- pseudonyms of its sealed fields in its top-level `subjects` member.
CREATE INDEX audit_entries_subjects ON audit_entries USING gin ((entry -> 'subjects') jsonb_path_ops);

-- One row: the secret of the lookup HMAC, made once (random, 32 bytes), wrapped under the KEK like
-- the keys. It does not depend on the KEK, so configuring a KEK later (the rows get wrapped at start)
-- keeps every subject findable by its identifier.
CREATE TABLE audit_subject_lookup (
  id          smallint PRIMARY KEY CHECK (id = 1),
  secret      bytea NOT NULL,
  kek_id      text,
  created_at  timestamptz NOT NULL DEFAULT now()
);
