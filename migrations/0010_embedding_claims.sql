-- A worker about to embed a chunk text claims its hash for a short lease; concurrent workers
-- wait for its vector instead of embedding the same text again. A claim outlives a worker
-- that died only until its lease expires.
CREATE TABLE embedding_claims (
    model      text        NOT NULL,
    chunk_hash bytea       NOT NULL,
    owner      text        NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (model, chunk_hash)
);
