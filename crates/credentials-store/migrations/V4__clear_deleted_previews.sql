-- A deleted credential keeps its name and type, not its preview: the preview was derived from
-- the destroyed secret (a key's ends, a connection string's host), and crypto-shredding leaves
-- nothing of the secret behind. Rows deleted before the delete cleared it are cleared here, and
-- the CHECK keeps every later delete honest.
UPDATE credentials SET masked_content = '' WHERE deleted_at IS NOT NULL AND masked_content <> '';

ALTER TABLE credentials
    ADD CONSTRAINT credentials_no_preview_when_deleted
    CHECK (deleted_at IS NULL OR masked_content = '');
