"""Claims on chunk texts being embedded, so that concurrent workers embed each text once.

A worker claims the hashes it is about to embed (a row per hash with a short lease and the
Postgres session that claimed it), embeds those it won in slices (renewing the lease between
slices), keeps their vectors in the cache, and drops the claims. For the hashes another
worker holds, it waits for their vectors to reach the cache; if the other worker dies, its
session ends with it and the hash is claimed again at once (or, where the session outlives
the worker, e.g. behind a pooler, once the lease expires). The cache is looked up again
after claiming, so a text finished by another worker just before is not embedded twice.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

import psycopg

from ingest_worker import embedding_cache
from ingest_worker.embedding import Vector

Embed = Callable[[dict[bytes, str]], tuple[dict[bytes, Vector], dict[bytes, Exception]]]
# Characters of text per model call between lease renewals: ~50k tokens, ~15 s of embedding
# full-length chunks on torch here (the slowest case), well within the default 60 s lease.
# Fewer, larger calls keep the model's batches full: slices of 256 short texts (50 tokens)
# cost 12% more model time than one call on 4,030 such texts; slices of 1,024, none.
SLICE_CHARS = 200_000


def claim(
    conn: psycopg.Connection[Any], model: str, hashes: Collection[bytes], owner: str, lease_s: float
) -> set[bytes]:
    """The hashes `owner` holds now: new claims, its own renewed, expired ones and those of
    ended sessions taken over. Sorted, so that two workers claiming overlapping sets never
    deadlock."""
    rows = conn.execute(
        """INSERT INTO embedding_claims AS c (model, chunk_hash, owner, expires_at, backend_pid)
           SELECT %(model)s, h, %(owner)s, clock_timestamp() + %(lease)s * interval '1 second',
                  pg_backend_pid()
           FROM unnest(%(hashes)s::bytea[]) AS h
           ON CONFLICT (model, chunk_hash) DO UPDATE
               SET owner = excluded.owner, expires_at = excluded.expires_at,
                   backend_pid = excluded.backend_pid
               WHERE c.owner = excluded.owner
                  OR c.expires_at < clock_timestamp()
                  OR NOT EXISTS (SELECT FROM pg_stat_activity a WHERE a.pid = c.backend_pid)
           RETURNING chunk_hash""",
        {"model": model, "owner": owner, "lease": lease_s, "hashes": sorted(hashes)},
    ).fetchall()
    return {bytes(r[0]) for r in rows}


def release(
    conn: psycopg.Connection[Any], model: str, hashes: Collection[bytes], owner: str
) -> None:
    if hashes:
        conn.execute(
            "DELETE FROM embedding_claims WHERE model = %s AND chunk_hash = ANY(%s) AND owner = %s",
            (model, list(hashes), owner),
        )


def embed_once(
    conn: psycopg.Connection[Any],
    model: str,
    texts: Mapping[bytes, str],
    embed: Embed,
    owner: str,
    lease_s: float = 60.0,
    poll_s: float = 0.1,
) -> tuple[dict[bytes, Vector], dict[bytes, Exception], dict[bytes, Vector]]:
    """Vectors for `texts`: (embedded here, failed here, embedded by another worker)."""
    fresh: dict[bytes, Vector] = {}
    failed: dict[bytes, Exception] = {}
    shared: dict[bytes, Vector] = {}
    waiting = dict(texts)
    while waiting:
        mine = claim(conn, model, waiting, owner, lease_s)
        done = embedding_cache.lookup(conn, model, waiting)
        shared.update(done)
        release(conn, model, mine & done.keys(), owner)
        ours = [h for h in waiting if h in mine and h not in done]
        for h in [*done, *ours]:
            del waiting[h]
        try:
            _embed_claimed(
                conn, model, {h: texts[h] for h in ours}, embed, owner, lease_s, fresh, failed
            )
        except BaseException:
            # Failing or stopping: let other workers (or our restart) have these at once;
            # only a worker killed outright leaves its claims to expire.
            with contextlib.suppress(psycopg.Error):
                release(conn, model, [h for h in ours if h not in fresh], owner)
            raise
        if waiting and not ours and not done:
            time.sleep(poll_s)  # another worker is embedding these: wait for its vectors
    return fresh, failed, shared


def _embed_claimed(
    conn: psycopg.Connection[Any],
    model: str,
    texts: dict[bytes, str],
    embed: Embed,
    owner: str,
    lease_s: float,
    fresh: dict[bytes, Vector],
    failed: dict[bytes, Exception],
) -> None:
    """Embed the texts this worker claimed, in slices; keep each slice's vectors and drop
    its claims at once, and renew the lease of the rest. Slices hold texts of similar
    length, so that the model pads them little."""
    hashes = sorted(texts, key=lambda h: len(texts[h]))
    parts = slices([len(texts[h]) for h in hashes], SLICE_CHARS)
    for start, end in parts:
        part = {h: texts[h] for h in hashes[start:end]}
        vectors, errors = embed(part)
        embedding_cache.keep(conn, vectors, model)
        fresh.update(vectors)
        release(conn, model, part.keys(), owner)  # a failed text may be tried elsewhere
        failed.update(errors)
        if rest := hashes[end:]:
            claim(conn, model, rest, owner, lease_s)


def slices(lengths: Sequence[int], budget: int) -> list[tuple[int, int]]:
    """(start, end) of consecutive runs of texts whose lengths add up to at most `budget`
    (a longer text makes a slice of its own)."""
    bounds: list[tuple[int, int]] = []
    start, total = 0, 0
    for index, length in enumerate(lengths):
        if index > start and total + length > budget:
            bounds.append((start, index))
            start, total = index, 0
        total += length
    if start < len(lengths):
        bounds.append((start, len(lengths)))
    return bounds
