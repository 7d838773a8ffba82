-- SCIM 2.0 provisioning (src/scim, docs/scim.md): the people who operate Sluice and their groups,
-- as an identity provider (Entra ID, Okta) pushes them. The admin API reads these rows on every
-- request of an OIDC principal (src/admin/scim-access.ts), so deprovisioning holds at once on every
-- replica sharing the store. The data plane never reads them.
-- `resource` holds the attributes the client sent (never a password, never id/meta/groups, which
-- Sluice owns); the columns beside it are what filters, uniqueness and admission need.
-- Every change is recorded in admin_changes (actor `scim`) in the same transaction.

CREATE TABLE scim_users (
  id            text PRIMARY KEY,
  user_name     text NOT NULL CHECK (length(user_name) BETWEEN 1 AND 512),
  external_id   text,
  display_name  text,
  active        boolean NOT NULL DEFAULT true,
  resource      jsonb NOT NULL CHECK (jsonb_typeof(resource) = 'object'),
  version       bigint NOT NULL DEFAULT 1,           -- every change +1: the ETag W/"<version>"
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
-- userName is unique and not case-exact (RFC 7643 4.1.1).
CREATE UNIQUE INDEX scim_users_user_name ON scim_users (lower(user_name));
CREATE INDEX scim_users_external_id ON scim_users (external_id);

CREATE TABLE scim_groups (
  id            text PRIMARY KEY,
  display_name  text NOT NULL CHECK (length(display_name) BETWEEN 1 AND 512),
  external_id   text,
  resource      jsonb NOT NULL CHECK (jsonb_typeof(resource) = 'object'),
  version       bigint NOT NULL DEFAULT 1,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);
-- admin.scim.groupRoles maps groups by displayName: two groups of one name would be ambiguous.
CREATE UNIQUE INDEX scim_groups_display_name ON scim_groups (lower(display_name));

-- Members are users (nested groups are not supported). Deleting either side removes the membership.
CREATE TABLE scim_members (
  group_id      text NOT NULL REFERENCES scim_groups (id) ON DELETE CASCADE,
  user_id       text NOT NULL REFERENCES scim_users (id) ON DELETE CASCADE,
  PRIMARY KEY (group_id, user_id)
);
CREATE INDEX scim_members_user ON scim_members (user_id);
