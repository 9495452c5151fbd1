-- The audit log's text columns get the shapes the API writes, so a malformed event is refused
-- by the database rather than stored. NOT VALID: the table is append-only, so rows written
-- before these rules cannot be corrected; the rules hold for every row written from now on.
ALTER TABLE audit_events
    ADD CONSTRAINT audit_events_workspace_id_form
        CHECK (workspace_id ~ '^[A-Za-z0-9_.-]{1,64}$') NOT VALID,
    ADD CONSTRAINT audit_events_actor_form
        CHECK (octet_length(actor) BETWEEN 1 AND 256 AND actor !~ '[[:cntrl:]]') NOT VALID,
    ADD CONSTRAINT audit_events_status_code_form
        CHECK (status_code ~ '^[A-Z_]{2,32}$') NOT VALID,
    ADD CONSTRAINT audit_events_request_id_form
        CHECK (request_id ~ '^[A-Za-z0-9_.-]{1,64}$') NOT VALID,
    ADD CONSTRAINT audit_events_codes_known
        CHECK (action >= 1 AND outcome >= 1) NOT VALID;

-- Events that belong to no workspace's log: refusals of a caller acting in a workspace its
-- token does not name (written here, so that no caller can add rows to another tenant's log),
-- and platform-wide operations such as re-wrap sweeps. Read with the admin API's
-- ListSecurityEvents, which needs a platform-wide grant. Append-only, like audit_events.
CREATE TABLE security_events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The workspace the request named, if any (already checked to be a well-formed id).
    workspace_id  text CHECK (workspace_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    credential_id uuid,
    actor         text NOT NULL
                  CHECK (octet_length(actor) BETWEEN 1 AND 256 AND actor !~ '[[:cntrl:]]'),
    action        smallint NOT NULL CHECK (action >= 1),
    outcome       smallint NOT NULL CHECK (outcome >= 1),
    status_code   text NOT NULL CHECK (status_code ~ '^[A-Z_]{2,32}$'),
    request_id    text NOT NULL CHECK (request_id ~ '^[A-Za-z0-9_.-]{1,64}$'),
    occurred_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER security_events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON security_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER security_events_no_truncate
    BEFORE TRUNCATE ON security_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
