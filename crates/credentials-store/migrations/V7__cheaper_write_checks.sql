-- The same invariants as before, checked at a lower price on every write (measured with
-- pg_stat_statements; docs/performance.md, "Postgres per write and per access").

-- 1. A credential's (type, category) is in the catalogue. The foreign key checked it by locking
-- the catalogue row FOR KEY SHARE on every insert: a WAL record and a dirtied page per create,
-- and a MultiXact whenever two concurrent creates name the same type. A CHECK against the
-- catalogue's own list costs neither. `credential_types` stays the source: any change to it
-- recompiles the CHECK, validated against every row, so removing or re-categorising a type
-- that a credential still uses is refused, as the foreign key refused it. The pair is joined
-- with ':' to compare it as one string, which is why a type id may not contain one.
ALTER TABLE credential_types
    ADD CONSTRAINT credential_types_type_id_form
        CHECK (octet_length(type_id) BETWEEN 1 AND 64 AND type_id !~ '[^a-z0-9_]');

-- Quiet: the first run's DROP ... IF EXISTS would otherwise send a NOTICE.
CREATE FUNCTION credential_types_compile() RETURNS void LANGUAGE plpgsql
    SET client_min_messages = warning AS $$
BEGIN
    EXECUTE format(
        'ALTER TABLE credentials DROP CONSTRAINT IF EXISTS credentials_type_known, '
        'ADD CONSTRAINT credentials_type_known CHECK ((type_id || '':'' || category) = ANY (%L::text[]))',
        (SELECT coalesce(array_agg(type_id || ':' || category ORDER BY type_id), '{}')
         FROM credential_types));
END;
$$;

CREATE FUNCTION credential_types_recompile() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM credential_types_compile();
    RETURN NULL;
END;
$$;

CREATE TRIGGER credential_types_recompile
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON credential_types
    FOR EACH STATEMENT EXECUTE FUNCTION credential_types_recompile();

SELECT credential_types_compile();
ALTER TABLE credentials DROP CONSTRAINT credentials_type_id_category_fkey;

-- 2. The audit logs' text shapes without bounded repetition: Postgres's regex engine expands
-- `{1,64}` into 64 copies of the class, which made these CHECKs about 15 µs each, a third of
-- an access's audit insert. A length bound and "no character outside the class" say the same
-- (every character of the class is one byte, so octets and characters count alike) at about
-- 1 µs. NOT VALID as in V3, for the same reason: rows older than V3 cannot be corrected.
ALTER TABLE audit_events
    DROP CONSTRAINT audit_events_workspace_id_form,
    ADD CONSTRAINT audit_events_workspace_id_form CHECK (
        octet_length(workspace_id) BETWEEN 1 AND 64 AND workspace_id !~ '[^A-Za-z0-9_.-]') NOT VALID,
    DROP CONSTRAINT audit_events_status_code_form,
    ADD CONSTRAINT audit_events_status_code_form CHECK (
        octet_length(status_code) BETWEEN 2 AND 32 AND status_code !~ '[^A-Z_]') NOT VALID,
    DROP CONSTRAINT audit_events_request_id_form,
    ADD CONSTRAINT audit_events_request_id_form CHECK (
        octet_length(request_id) BETWEEN 1 AND 64 AND request_id !~ '[^A-Za-z0-9_.-]') NOT VALID;

ALTER TABLE security_events
    DROP CONSTRAINT security_events_workspace_id_check,
    ADD CONSTRAINT security_events_workspace_id_check CHECK (
        octet_length(workspace_id) BETWEEN 1 AND 64 AND workspace_id !~ '[^A-Za-z0-9_.-]'),
    DROP CONSTRAINT security_events_status_code_check,
    ADD CONSTRAINT security_events_status_code_check CHECK (
        octet_length(status_code) BETWEEN 2 AND 32 AND status_code !~ '[^A-Z_]'),
    DROP CONSTRAINT security_events_request_id_check,
    ADD CONSTRAINT security_events_request_id_check CHECK (
        octet_length(request_id) BETWEEN 1 AND 64 AND request_id !~ '[^A-Za-z0-9_.-]');
