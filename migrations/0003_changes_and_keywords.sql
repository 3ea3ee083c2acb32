-- The change feed: one row per committed document version, in commit order; SSE clients
-- resume after the last id they saw (Last-Event-ID).
CREATE TABLE changes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant      text        NOT NULL,
    doc_id      text        NOT NULL,
    version     bigint      NOT NULL,
    op          text        NOT NULL,
    indexed_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX changes_tenant_id ON changes (tenant, id);

-- Keyword search: English stemming over the heading path and the text.
ALTER TABLE chunks ADD COLUMN tsv tsvector
    GENERATED ALWAYS AS (to_tsvector('english', heading || ' ' || text)) STORED;
CREATE INDEX chunks_tsv ON chunks USING gin (tsv);
