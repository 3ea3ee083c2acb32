-- BM25 keyword search inside Postgres. Two structures, both written by triggers on chunks,
-- so they change in the same transaction as the chunks they describe (a query sees the
-- statistics of exactly the index state it ranks):
--   chunk_terms  one row per (chunk, lexeme): the term frequency and the chunk's length.
--                A term's document frequency is the number of its rows: always exact, and
--                writers only ever insert or delete their own chunks' rows (no shared row).
--   bm25_totals  chunk count and token count per tenant, spread over 64 rows per tenant
--                (picked by transaction id), so concurrent writers rarely touch the same row;
--                a query sums them.
-- Everything is per tenant: one tenant's statistics never shape another tenant's scores.

-- A chunk's length for BM25: its indexed tokens (stop words are not counted).
CREATE FUNCTION bm25_length(doc tsvector) RETURNS integer
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN (SELECT coalesce(sum(array_length(positions, 1)), 0)::integer FROM unnest(doc));

CREATE TABLE chunk_terms (
    tenant    text    NOT NULL,
    lexeme    text    NOT NULL,
    chunk_id  bigint  NOT NULL,
    tf        integer NOT NULL,
    length    integer NOT NULL,
    -- The search reads (tenant, lexeme) ranges with tf and length: an index-only scan.
    PRIMARY KEY (tenant, lexeme, chunk_id) INCLUDE (tf, length)
);

CREATE TABLE bm25_totals (
    tenant  text    NOT NULL,
    shard   integer NOT NULL,
    chunks  bigint  NOT NULL,
    tokens  bigint  NOT NULL,
    PRIMARY KEY (tenant, shard)
);

CREATE FUNCTION bm25_sync() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    my_shard integer := (pg_current_xact_id()::text::bigint % 64)::integer;
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        DELETE FROM chunk_terms
        WHERE tenant = OLD.tenant AND lexeme = ANY (tsvector_to_array(OLD.tsv))
          AND chunk_id = OLD.id;
        INSERT INTO bm25_totals AS t (tenant, shard, chunks, tokens)
        VALUES (OLD.tenant, my_shard, -1, -bm25_length(OLD.tsv))
        ON CONFLICT (tenant, shard) DO UPDATE
            SET chunks = t.chunks + excluded.chunks, tokens = t.tokens + excluded.tokens;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO chunk_terms (tenant, lexeme, chunk_id, tf, length)
        SELECT NEW.tenant, u.lexeme, NEW.id, array_length(u.positions, 1), bm25_length(NEW.tsv)
        FROM unnest(NEW.tsv) AS u;
        INSERT INTO bm25_totals AS t (tenant, shard, chunks, tokens)
        VALUES (NEW.tenant, my_shard, 1, bm25_length(NEW.tsv))
        ON CONFLICT (tenant, shard) DO UPDATE
            SET chunks = t.chunks + excluded.chunks, tokens = t.tokens + excluded.tokens;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER chunks_bm25_insert_delete AFTER INSERT OR DELETE ON chunks
    FOR EACH ROW EXECUTE FUNCTION bm25_sync();
-- tsv is generated from heading and text; renumbering (ordinal) and reindexing (embedding)
-- leave the terms alone.
CREATE TRIGGER chunks_bm25_update AFTER UPDATE OF tenant, heading, text ON chunks
    FOR EACH ROW EXECUTE FUNCTION bm25_sync();

-- Chunks indexed before this migration.
INSERT INTO chunk_terms (tenant, lexeme, chunk_id, tf, length)
SELECT c.tenant, u.lexeme, c.id, array_length(u.positions, 1), bm25_length(c.tsv)
FROM chunks c, unnest(c.tsv) AS u;
INSERT INTO bm25_totals (tenant, shard, chunks, tokens)
SELECT tenant, 0, count(*), coalesce(sum(bm25_length(tsv)), 0) FROM chunks GROUP BY tenant;
