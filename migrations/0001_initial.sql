-- freshindex initial schema. Applied once by `freshindex migrate`; never edit after release:
-- add a new numbered file instead (the checksum check refuses edited files).

CREATE EXTENSION IF NOT EXISTS vector;

-- One row per document ever seen; a delete keeps the row as a tombstone (deleted = true) so
-- that a late, older upsert cannot resurrect the document.
CREATE TABLE documents (
    tenant       text        NOT NULL,
    doc_id       text        NOT NULL,
    version      bigint      NOT NULL,
    deleted      boolean     NOT NULL DEFAULT false,
    content_hash bytea,
    title        text,
    metadata     jsonb       NOT NULL DEFAULT '{}',
    source       text        NOT NULL,
    fingerprint  text,                 -- the source's cheap change detector (file stat)
    event_time   timestamptz,
    indexed_at   timestamptz NOT NULL DEFAULT now(),
    chunk_count  integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (tenant, doc_id)
);
CREATE INDEX documents_source ON documents (source) WHERE NOT deleted;
CREATE INDEX documents_metadata ON documents USING gin (metadata jsonb_path_ops);

-- The embedding column gets its dimensions (and its HNSW index) when the first model is
-- activated, because the model is a setting.
CREATE TABLE chunks (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant       text    NOT NULL,
    doc_id       text    NOT NULL,
    ordinal      integer NOT NULL,
    chunk_hash   bytea   NOT NULL,
    heading      text    NOT NULL DEFAULT '',
    text         text    NOT NULL,
    embedding    vector  NOT NULL,
    FOREIGN KEY (tenant, doc_id) REFERENCES documents (tenant, doc_id) ON DELETE CASCADE,
    -- deferred: renumbering kept chunks swaps ordinals inside one transaction
    CONSTRAINT chunks_ordinal_unique UNIQUE (tenant, doc_id, ordinal) DEFERRABLE INITIALLY DEFERRED
);

-- Every vector ever computed, by model and the hash of the exact text the model saw: a chunk
-- text is embedded at most once per model, across documents and versions.
CREATE TABLE embedding_cache (
    model       text        NOT NULL,
    chunk_hash  bytea       NOT NULL,
    embedding   vector      NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model, chunk_hash)
);

-- The model whose vectors are in chunks.embedding.
CREATE TABLE active_model (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    model       text    NOT NULL,
    dimensions  integer NOT NULL,
    activated_at timestamptz NOT NULL DEFAULT now()
);

-- Written in the same transaction as the chunks an event produced.
CREATE TABLE source_positions (
    source      text        NOT NULL,
    partition   integer     NOT NULL DEFAULT 0,
    position    bigint      NOT NULL,
    event_time  timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, partition)
);

CREATE TABLE dead_letters (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source      text        NOT NULL,
    tenant      text,
    doc_id      text,
    version     bigint,
    partition   integer,
    position    bigint,
    reason      text        NOT NULL,
    error_class text        NOT NULL,
    payload     bytea,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Totals that survive restarts (chunks embedded, reused, stale events, ...).
CREATE TABLE counters (
    name  text   PRIMARY KEY,
    value bigint NOT NULL DEFAULT 0
);
