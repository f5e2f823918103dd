-- Who made whom an admin, and when. users.role is what authorizes; this is the record. granted_by is the admin who
-- granted (NULL once that account is gone, and for the one-time bootstrap and confirmed Supabase emails of Auth:Admins).
-- At most one bootstrap grant exists: two bootstraps racing cannot both win.

CREATE TABLE admin_grants (
    id          uuid PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    granted_by  uuid NULL REFERENCES users (id) ON DELETE SET NULL,
    via         text NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE UNIQUE INDEX ux_admin_grants_one_bootstrap ON admin_grants (via) WHERE via = 'bootstrap';
CREATE INDEX ix_admin_grants_created ON admin_grants (created_at, id);
