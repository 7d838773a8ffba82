-- Querying the audit log (src/audit/query.ts, docs/audit-log.md#querying-the-log): by tenant, type,
-- actor and the entry's own time, each an expression index over audit_entries.entry so that a query
-- reads the index and never the whole log. Indexes that end in seq give a filter's matches in log
-- order, so a page (seq > cursor ... ORDER BY seq LIMIT n) stops after n matches.
--
-- No new table and no change to any entry: the leaf data stays exactly what the tree committed to.

-- The tenant an entry names: a data-plane event's `tenant`; for an admin change, the tenant of its
-- target (`tenant:<id>`) or of the key it changed (the key record's tenantId, after or before).
-- IMMUTABLE (it reads only its argument), so it can be indexed; query.ts calls it by this name.
CREATE FUNCTION sluice_audit_tenant(e jsonb) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN e->>'type' = 'admin_change' THEN
      CASE
        WHEN e->>'target' LIKE 'tenant:%' THEN substr(e->>'target', 8)
        ELSE coalesce(e->'after'->>'tenantId', e->'before'->>'tenantId')
      END
    ELSE e->>'tenant'
  END
$$;

CREATE INDEX audit_entries_tenant ON audit_entries (sluice_audit_tenant(entry), seq);
CREATE INDEX audit_entries_type ON audit_entries ((entry->>'type'), seq);
-- Actors: `actor` of admin changes and release decisions, `principal` of data-plane events (an API
-- key id or a token's subject). The tenant filter also reads `principal` (the tenant's key ids).
CREATE INDEX audit_entries_actor ON audit_entries ((entry->>'actor'), seq);
CREATE INDEX audit_entries_principal ON audit_entries ((entry->>'principal'), seq);
-- The entry's own time, ISO 8601 UTC with milliseconds (every producer writes that one form, so
-- text order is time order). audit_entries.at is when the sequencer integrated it, a little later.
CREATE INDEX audit_entries_entry_at ON audit_entries ((entry->>'at'));

-- (The tenant export reads admin_changes by target: migration 004's admin_changes_target serves it.)
