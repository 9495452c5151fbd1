-- An access's audit event as the group commit writes a batch of one.
\set n random(0, 999)
INSERT INTO audit_events (workspace_id, credential_id, actor, action, outcome, status_code, request_id) SELECT * FROM unnest(ARRAY['bench-' || (:n % 10)]::text[], ARRAY[md5('seed' || :n)::uuid]::uuid[], ARRAY['bench-user']::text[], ARRAY[3]::int2[], ARRAY[1]::int2[], ARRAY['OK']::text[], ARRAY['req-0123456789abcdef']::text[]);
