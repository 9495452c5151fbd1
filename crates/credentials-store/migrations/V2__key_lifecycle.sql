-- A workspace may have a master key of its own; without a row it uses the kms's default key.
CREATE TABLE workspace_keys (
    workspace_id text PRIMARY KEY CHECK (octet_length(workspace_id) BETWEEN 1 AND 64),
    key_id       text NOT NULL CHECK (key_id ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    updated_by   text NOT NULL
);

-- Re-wrap sweeps. The rows of `credentials` are the sweep's real progress (each records the
-- master key and version of its data key), so a sweep resumes after a crash by asking again
-- what is not yet on its target; this table records who started what and the counts.
CREATE TABLE rewrap_runs (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    state        smallint NOT NULL,
    dry_run      boolean NOT NULL DEFAULT false,
    requested_by text NOT NULL,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    examined     bigint NOT NULL DEFAULT 0,
    rewrapped    bigint NOT NULL DEFAULT 0,
    skipped      bigint NOT NULL DEFAULT 0,
    failed       bigint NOT NULL DEFAULT 0,
    message      text NOT NULL DEFAULT ''
);
-- At most one unfinished sweep.
CREATE UNIQUE INDEX rewrap_runs_one_running ON rewrap_runs ((true)) WHERE finished_at IS NULL;
