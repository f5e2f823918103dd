-- Chat turns run on the server: a heartbeat per turn, cancellation, and one running turn per agent.

ALTER TABLE turns ADD COLUMN heartbeat_at timestamptz NULL;
ALTER TABLE turns ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false;
ALTER TABLE turns ADD COLUMN last_event_seq integer NOT NULL DEFAULT 0;
DROP INDEX IF EXISTS ix_turns_status;
CREATE UNIQUE INDEX ux_turns_one_running_per_agent ON turns (agent_id) WHERE status = 'running';
CREATE INDEX ix_turns_running ON turns (heartbeat_at) WHERE status = 'running';
CREATE INDEX ix_turns_completed ON turns (completed_at) WHERE completed_at IS NOT NULL;
