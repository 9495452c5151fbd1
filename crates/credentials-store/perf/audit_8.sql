-- A group-commit batch of 8 access events: at most that many form when 8 clients wait.
\set n random(0, 999)
INSERT INTO audit_events (workspace_id, credential_id, actor, action, outcome, status_code, request_id) SELECT 'bench-' || ((:n + g) % 10), md5('seed' || ((:n + g) % 1000))::uuid, 'bench-user', 5::int2, 1::int2, 'OK', 'req-0123456789abcdef' || g FROM generate_series(1, 8) g;
