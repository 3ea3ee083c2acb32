-- Dead letters resolve: once a later version of the same document is applied (or it is
-- deleted), its dead letters are kept for history but no longer count as open.
ALTER TABLE dead_letters ADD COLUMN resolved_at timestamptz;
ALTER TABLE dead_letters ADD COLUMN resolved_by_version bigint;
CREATE INDEX dead_letters_open ON dead_letters (tenant, doc_id) WHERE resolved_at IS NULL;
