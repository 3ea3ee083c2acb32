-- A claim also records the Postgres session (backend pid) that made it. A worker killed
-- outright loses its connection at once, so a claim whose session is gone can be taken over
-- without waiting out its lease: a restarted worker used to stall up to the whole lease (60 s)
-- on the texts its predecessor was embedding. The lease still covers what a pid cannot tell
-- (a pooler that keeps the server session open, a reused pid).
ALTER TABLE embedding_claims ADD COLUMN backend_pid integer NOT NULL DEFAULT pg_backend_pid();
