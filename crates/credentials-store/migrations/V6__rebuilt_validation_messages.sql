-- Validation messages stored before this version were made by search-and-replace over text that
-- held the secret, so a stored one can carry part of a password (a one-letter password starred
-- inside ordinary words, the tail of a password read as a host). They cannot be rebuilt from the
-- row, so they are replaced by a fixed text; the outcome and state stay, and the next validation
-- stores a message built only from non-secret parts.
UPDATE credentials
SET validation_message = 'checked by an earlier version whose message is withdrawn; validate again for the details'
WHERE validation_message <> '';
