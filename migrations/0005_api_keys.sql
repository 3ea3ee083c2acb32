-- API keys for the HTTP API: only a SHA-256 digest of each key is stored.
CREATE TABLE api_keys (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant      text,                  -- NULL: an admin key (every tenant, index-wide endpoints)
    name        text        NOT NULL DEFAULT '',
    prefix      text        NOT NULL,  -- the key's first characters, to recognise it
    key_digest  bytea       NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
