-- The generation of a credential's value: 0 for values sealed in payload formats 1 and 2 (which
-- do not bind it), and from 1, incremented on every value write, for format 3, whose encryption
-- context binds it. An older ciphertext restored onto the row then no longer opens.
ALTER TABLE credentials ADD COLUMN value_generation bigint NOT NULL DEFAULT 0
    CONSTRAINT credentials_value_generation_nonnegative CHECK (value_generation >= 0);

-- A row written in format 3 cannot be set back to an older format, which binds less: a live
-- value of generation 0 is in format 1 or 2, any other in format 3 or later.
ALTER TABLE credentials ADD CONSTRAINT credentials_generation_matches_format CHECK (
    payload_format IS NULL OR (payload_format >= 3) = (value_generation >= 1)
);
