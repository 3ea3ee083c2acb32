-- Mass-delete guard: when one reconcile or batch of a source would delete too many of its
-- documents, the deletes are held (one open row per source) until an operator confirms
-- (`freshindex confirm-deletes SOURCE`). Released rows are kept for history.
CREATE TABLE delete_holds (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source       text        NOT NULL,
    deletes      integer     NOT NULL,
    documents    integer     NOT NULL,
    reason       text        NOT NULL,
    held_at      timestamptz NOT NULL DEFAULT now(),
    confirmed_at timestamptz,
    released_at  timestamptz
);
CREATE UNIQUE INDEX delete_holds_open ON delete_holds (source) WHERE released_at IS NULL;
