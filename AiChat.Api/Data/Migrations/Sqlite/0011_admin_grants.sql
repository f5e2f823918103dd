-- Who made whom an admin, and when. users.role is what authorizes; this is the record. granted_by is the admin who
-- granted (NULL once that account is gone, and for the one-time bootstrap and confirmed Supabase emails of Auth:Admins).
-- At most one bootstrap grant exists: two bootstraps racing cannot both win.

CREATE TABLE admin_grants (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    granted_by  TEXT NULL REFERENCES users (id) ON DELETE SET NULL,
    via         TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE UNIQUE INDEX ux_admin_grants_one_bootstrap ON admin_grants (via) WHERE via = 'bootstrap';
CREATE INDEX ix_admin_grants_created ON admin_grants (created_at, id);
