-- The audit tree's nodes and its archive (src/audit/nodes.ts, src/audit/retention.ts,
-- docs/audit-log.md "Retention and archive").
--
-- audit_nodes holds every perfect subtree of the tree: the node (level, idx) is MTH of the leaves
-- [idx * 2^level, (idx + 1) * 2^level); level 0 is the leaf hashes. The sequencer writes the nodes a
-- batch completes in the batch's own transaction, so a proof reads O(log n) rows instead of every
-- leaf hash. About 2n rows for n entries.
--
-- Pruning below a minimum index m deletes the entries, checkpoints and nodes below m, except the
-- nodes that proofs of newer entries and consistency proofs from the retained checkpoints still
-- need: those that reach m or beyond, and the frontier of m (one per set bit of m).

CREATE TABLE audit_nodes (
  level  smallint NOT NULL CHECK (level >= 0 AND level < 63),
  idx    bigint NOT NULL CHECK (idx >= 0),
  hash   bytea NOT NULL CHECK (length(hash) = 32),
  PRIMARY KEY (level, idx)
);

-- Archived segments [from_seq, to_seq): the bundle file written before the rows were pruned, in the
-- transaction that pruned them. The hot store's minimum index is max(to_seq).
-- next_redaction: when the earliest entry still readable in the file passes its retention.
CREATE TABLE audit_archives (
  from_seq        bigint PRIMARY KEY CHECK (from_seq >= 0),
  to_seq          bigint NOT NULL UNIQUE CHECK (to_seq > from_seq),
  file            text NOT NULL,
  sha256          bytea NOT NULL CHECK (length(sha256) = 32),
  next_redaction  timestamptz,
  at              timestamptz NOT NULL DEFAULT now()
);

-- Computes the missing nodes from the leaf hashes of audit_entries with seq >= from_seq, level by
-- level with PostgreSQL's sha256(): used by this migration for logs that exist already, and by the
-- sequencer when it finds leaves without nodes (entries a replica of an older version integrated).
CREATE FUNCTION sluice_audit_nodes_backfill(from_seq bigint) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  l int := 0;
  lo bigint := from_seq;
  n bigint;
  total bigint := 0;
BEGIN
  INSERT INTO audit_nodes (level, idx, hash)
    SELECT 0, seq, leaf_hash FROM audit_entries WHERE seq >= from_seq
    ON CONFLICT DO NOTHING;
  GET DIAGNOSTICS n = ROW_COUNT;
  total := n;
  LOOP
    lo := (lo / 2) * 2;   -- the first left child that may have a new parent
    INSERT INTO audit_nodes (level, idx, hash)
      SELECT l + 1, a.idx / 2, sha256('\x01'::bytea || a.hash || b.hash)
      FROM audit_nodes a JOIN audit_nodes b ON b.level = l AND b.idx = a.idx + 1
      WHERE a.level = l AND a.idx >= lo AND a.idx % 2 = 0
      ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n = ROW_COUNT;
    -- A node above a new one is new: once a level gains nothing, the levels above gain nothing.
    EXIT WHEN n = 0;
    total := total + n;
    l := l + 1;
    lo := lo / 2;
  END LOOP;
  RETURN total;
END $$;

SELECT sluice_audit_nodes_backfill(0);
