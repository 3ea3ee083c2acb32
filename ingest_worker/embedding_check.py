"""The texts every exported backend is checked on against torch before it serves.

Short queries, sentences, code, numbers, non-Latin scripts, and passages longer than the
model's window (truncation must match too).
"""

from __future__ import annotations

import itertools

_SENTENCES = (
    "How do I rotate the signing keys without downtime?",
    "The worker commits each document version in one short transaction.",
    "Boundary-layer transition on a flat plate at high Mach numbers.",
    "def split(blocks, count_tokens, *, max_tokens): return list(blocks)",
    "SELECT doc_id, version FROM documents WHERE tenant = $1 ORDER BY version DESC;",
    "Invoice 2026-11-30: 3 x 19.99 EUR, VAT 21 %, total 72.56 EUR.",
    "Die Temperaturverteilung im Strömungsfeld wurde numerisch berechnet.",
    "Le modèle renvoie des vecteurs normalisés, un par texte, dans l'ordre.",
    "東京の天気は明日晴れるでしょう。",
    "Обновление индекса происходит сразу после записи файла.",
    "error: connection refused (is Kafka running on 127.0.0.1:9092?)",
    "kafka",
    "A",
    "   ",
    "Residential solar panels lose about half a percent of output per year.",
    "The quick brown fox jumps over the lazy dog; the dog does not mind.",
)


def check_texts() -> list[str]:
    """About 48 texts: every sentence alone, in pairs, and in passages of many sentences."""
    pairs = [f"{a} {b}" for a, b in itertools.pairwise(_SENTENCES)]
    passages = [
        " ".join(_SENTENCES[i:] + _SENTENCES[:i]) * (1 + i % 3) for i in range(len(_SENTENCES))
    ]
    return [*_SENTENCES, *pairs, *passages]
