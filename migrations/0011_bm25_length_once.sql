-- bm25_sync computed a chunk's length inside its INSERT ... SELECT, once per lexeme, and each
-- call unnests the whole tsvector: quadratic in a chunk's distinct terms. Measured on 600
-- Cranfield abstracts, two chunks per transaction, beside a CPU hog: Postgres' CPU for the
-- inserts fell from 2.13 s to 0.77 s with the length computed once (0.32 s without the
-- trigger).
CREATE OR REPLACE FUNCTION bm25_sync() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    my_shard integer := (pg_current_xact_id()::text::bigint % 64)::integer;
    len integer;
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        len := bm25_length(OLD.tsv);
        DELETE FROM chunk_terms
        WHERE tenant = OLD.tenant AND lexeme = ANY (tsvector_to_array(OLD.tsv))
          AND chunk_id = OLD.id;
        INSERT INTO bm25_totals AS t (tenant, shard, chunks, tokens)
        VALUES (OLD.tenant, my_shard, -1, -len)
        ON CONFLICT (tenant, shard) DO UPDATE
            SET chunks = t.chunks + excluded.chunks, tokens = t.tokens + excluded.tokens;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        len := bm25_length(NEW.tsv);
        INSERT INTO chunk_terms (tenant, lexeme, chunk_id, tf, length)
        SELECT NEW.tenant, u.lexeme, NEW.id, array_length(u.positions, 1), len
        FROM unnest(NEW.tsv) AS u;
        INSERT INTO bm25_totals AS t (tenant, shard, chunks, tokens)
        VALUES (NEW.tenant, my_shard, 1, len)
        ON CONFLICT (tenant, shard) DO UPDATE
            SET chunks = t.chunks + excluded.chunks, tokens = t.tokens + excluded.tokens;
    END IF;
    RETURN NULL;
END $$;
