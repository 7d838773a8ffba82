-- Releases (src/delivery/releases): the runtime state of each canary or blue/green release, its
-- decisions, the measurements replicas publish, and the lease that elects the one driving replica.
-- The config file says what a release is; these rows say where it is, so a restart or a reload
-- continues it, and every replica applies the same step.

CREATE TABLE releases (
  name             text PRIMARY KEY,
  route            text NOT NULL,
  run              integer NOT NULL DEFAULT 1,      -- starts of this release; samples belong to one run
  spec             jsonb NOT NULL,                  -- the release's config as the run started with it
  spec_hash        text NOT NULL,
  bucketing        text NOT NULL,                   -- kept for the whole run (docs/bucketing.md)
  state            text NOT NULL CHECK (state IN ('pending', 'running', 'paused', 'promoted', 'aborted')),
  step             integer NOT NULL DEFAULT 0,      -- index in the plan (cohorts, then steps)
  weight           double precision NOT NULL DEFAULT 0,   -- percent of sticky keys on the candidate
  step_started_at  timestamptz,
  started_at       timestamptz,
  updated_at       timestamptz NOT NULL DEFAULT now(),
  revision         bigint NOT NULL DEFAULT 1,       -- every change +1: writers compare and set
  failures         integer NOT NULL DEFAULT 0,      -- failed judgements in this run
  inconclusive     integer NOT NULL DEFAULT 0,      -- consecutive insufficient judgements
  reason           text
);

-- Every decision and action, with the figures that decided it (kept for the audit log).
CREATE TABLE release_events (
  id        bigserial PRIMARY KEY,
  release   text NOT NULL,
  run       integer NOT NULL,
  at        timestamptz NOT NULL DEFAULT now(),
  actor     text NOT NULL,                          -- `driver:<replica>` or the admin's identity
  action    text NOT NULL,                          -- start, hold, advance, promote, rollback, pause, resume, abort, ...
  step      integer NOT NULL,
  weight    double precision NOT NULL,
  verdict   text,                                   -- pass, fail, insufficient (judgements)
  reason    text NOT NULL,
  figures   jsonb
);
CREATE INDEX release_events_release ON release_events (release, id);

-- What each replica measured, per release run, step and version: cumulative totals, written again
-- on every flush (so a flush that failed is repaired by the next, and nothing is counted twice).
CREATE TABLE release_samples (
  release            text NOT NULL,
  run                integer NOT NULL,
  step               integer NOT NULL,
  replica            text NOT NULL,
  arm                text NOT NULL CHECK (arm IN ('stable', 'candidate')),
  requests           bigint NOT NULL,
  errors             bigint NOT NULL,
  upstream_failures  bigint NOT NULL,
  latency            bigint[] NOT NULL,            -- counts per bucket of LATENCY_BUCKETS
  mirrored           bigint NOT NULL DEFAULT 0,    -- mirrored requests answered by the candidate
  mirror_diffs       bigint NOT NULL DEFAULT 0,    -- of those, answers that differed from the stable one
  updated_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (release, run, step, replica, arm)
);

-- One row per elected role: the replica holding it renews it; another takes it once it expired.
CREATE TABLE leases (
  name        text PRIMARY KEY,
  holder      text NOT NULL,
  expires_at  timestamptz NOT NULL
);

CREATE FUNCTION sluice_notify_release() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('sluice_releases', '');
  RETURN NULL;
END $$;
CREATE TRIGGER releases_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON releases
  FOR EACH STATEMENT EXECUTE FUNCTION sluice_notify_release();
