-- The catalogue of types, so that the database itself refuses a type or a category it does not
-- know. Rows are added by later migrations when the catalogue grows; a test checks this table
-- against the catalogue compiled into the service.
CREATE TABLE credential_types (
    type_id  text PRIMARY KEY,
    category text NOT NULL CHECK (category IN ('llm', 'speech', 'image', 'video', 'data_warehouse', 'tools')),
    UNIQUE (type_id, category)
);

INSERT INTO credential_types (type_id, category) VALUES
    ('openai', 'llm'), ('anthropic', 'llm'), ('gemini', 'llm'), ('deepseek', 'llm'),
    ('fireworks', 'llm'), ('xai', 'llm'), ('openrouter', 'llm'), ('together_ai', 'llm'),
    ('mistral', 'llm'), ('cohere', 'llm'), ('groq', 'llm'), ('perplexity', 'llm'),
    ('bedrock', 'llm'), ('cerebras', 'llm'), ('sambanova', 'llm'), ('hyperbolic', 'llm'),
    ('deepinfra', 'llm'), ('novita', 'llm'), ('friendli', 'llm'), ('chutes', 'llm'),
    ('zai', 'llm'), ('moonshot', 'llm'), ('dashscope', 'llm'), ('huggingface', 'llm'),
    ('elevenlabs', 'speech'), ('deepgram', 'speech'), ('openai_audio', 'speech'),
    ('fal', 'image'), ('replicate', 'image'), ('stability', 'image'), ('openai_image', 'image'),
    ('runway', 'video'), ('pika', 'video'), ('luma', 'video'),
    ('postgresql', 'data_warehouse'), ('mysql', 'data_warehouse'), ('bigquery', 'data_warehouse'),
    ('snowflake', 'data_warehouse'), ('redshift', 'data_warehouse'), ('mssql', 'data_warehouse'),
    ('clickhouse', 'data_warehouse'), ('static_file', 'data_warehouse'),
    ('api_key', 'tools'), ('oauth', 'tools'), ('database', 'tools'), ('smtp', 'tools');

CREATE TABLE credentials (
    id                   uuid PRIMARY KEY,
    workspace_id         text NOT NULL CHECK (octet_length(workspace_id) BETWEEN 1 AND 64),
    name                 text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 128),
    category             text NOT NULL,
    type_id              text NOT NULL,
    description          text NOT NULL DEFAULT '' CHECK (char_length(description) <= 1024),
    masked_content       text NOT NULL,
    is_default           boolean NOT NULL DEFAULT false,

    validation_state     smallint NOT NULL DEFAULT 0,
    validation_outcome   smallint NOT NULL DEFAULT 0,
    validation_message   text NOT NULL DEFAULT '',
    validated_at         timestamptz,

    schema_document      jsonb,
    schema_discovered_at timestamptz,

    -- The secret, sealed: NULL once deleted (crypto-shredded).
    ciphertext           bytea,
    nonce                bytea,
    wrapped_key          bytea,
    master_key_id        text,
    master_key_version   integer,
    payload_format       smallint,

    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    deleted_at           timestamptz,
    revision             bigint NOT NULL DEFAULT 1 CHECK (revision >= 1),

    FOREIGN KEY (type_id, category) REFERENCES credential_types (type_id, category),
    -- A live credential has its whole envelope; a deleted one has none of it.
    CONSTRAINT credentials_envelope_iff_live CHECK (
        (deleted_at IS NULL
            AND ciphertext IS NOT NULL AND nonce IS NOT NULL AND wrapped_key IS NOT NULL
            AND master_key_id IS NOT NULL AND master_key_version IS NOT NULL
            AND payload_format IS NOT NULL)
        OR
        (deleted_at IS NOT NULL
            AND ciphertext IS NULL AND nonce IS NULL AND wrapped_key IS NULL
            AND master_key_id IS NULL AND master_key_version IS NULL
            AND payload_format IS NULL AND NOT is_default)
    ),
    CONSTRAINT credentials_schema_pair CHECK ((schema_document IS NULL) = (schema_discovered_at IS NULL))
);

-- A name is unique per workspace among live credentials.
CREATE UNIQUE INDEX credentials_name_live ON credentials (workspace_id, name) WHERE deleted_at IS NULL;
-- At most one live default per workspace and type.
CREATE UNIQUE INDEX credentials_default_live ON credentials (workspace_id, type_id)
    WHERE is_default AND deleted_at IS NULL;
-- Listing, newest first, with keyset pagination.
CREATE INDEX credentials_listing ON credentials (workspace_id, created_at DESC, id DESC);
-- Finding what a key rotation has left to re-wrap.
CREATE INDEX credentials_master_key ON credentials (master_key_id, master_key_version)
    WHERE deleted_at IS NULL;

-- Append-only: who did what to which credential, when, with what outcome. Never a value.
CREATE TABLE audit_events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    workspace_id  text NOT NULL,
    credential_id uuid,
    actor         text NOT NULL,
    action        smallint NOT NULL,
    outcome       smallint NOT NULL,
    status_code   text NOT NULL,
    request_id    text NOT NULL,
    occurred_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_workspace ON audit_events (workspace_id, id DESC);
CREATE INDEX audit_events_credential ON audit_events (credential_id, id DESC) WHERE credential_id IS NOT NULL;

CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_events is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER audit_events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
