-- Embedding-cache garbage collection: a vector no live chunk uses is removed once it has
-- been unused for a grace period. Writers append the chunk hashes they stop using here
-- (append-only: writers never wait on each other for it); the collector keeps any vector
-- released within the grace period, and trims this log to it.
CREATE TABLE cache_releases (
    chunk_hash  bytea       NOT NULL,
    released_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cache_releases_hash ON cache_releases (chunk_hash, released_at);
CREATE INDEX cache_releases_at ON cache_releases (released_at);
-- "Does a live chunk use this vector?" for the collector.
CREATE INDEX chunks_chunk_hash ON chunks (chunk_hash);
