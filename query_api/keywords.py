"""How a keyword query reads: free words are ranked with OR semantics (a natural-language
question matches chunks that share any of its words, best first); web-search syntax narrows
the hits: a "quoted phrase" must appear, a -word or -"phrase" must not.

Postgres' own `websearch_to_tsquery` reads the narrowing part, so quoting and exclusion mean
exactly what they mean there; it would AND every free word, which is why free words are
split off here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A quoted phrase (an unterminated quote runs to the end, as in websearch_to_tsquery), or a
# bare word; either may carry a leading "-".
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(-?)([^\s"]+)')


@dataclass(frozen=True, slots=True)
class KeywordQuery:
    terms: str  # the text whose words rank the hits (phrases' words included)
    required: str  # web-search syntax every hit must satisfy ("" when nothing is required)


def read(text: str) -> KeywordQuery:
    terms: list[str] = []
    required: list[str] = []
    for match in _TOKEN.finditer(text):
        negated_phrase, phrase, negated_word, word = match.groups()
        if phrase is not None:
            phrase = " ".join(phrase.split())
            if not phrase:
                continue
            if negated_phrase:
                required.append(f'-"{phrase}"')
            else:
                required.append(f'"{phrase}"')
                terms.append(phrase)
        elif negated_word and word.strip("-"):
            required.append(f"-{word.lstrip('-')}")
        elif word.strip("-"):
            terms.append(word)
    return KeywordQuery(" ".join(terms), " ".join(required))
