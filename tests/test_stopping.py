"""Stop strings over streamed deltas equal cutting the whole text at the
first occurrence of any stop string, however the text is split."""
from __future__ import annotations

import random

from minicpm_edge.stopping import StopStringFilter


def reference(text: str, stops: list[str]) -> str:
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]


def stream(text: str, stops: list[str], rng: random.Random) -> str:
    f = StopStringFilter(stops)
    out, i = [], 0
    while i < len(text) and not f.stopped:
        j = i + rng.randint(1, 4)
        out.append(f.feed(text[i:j]))
        i = j
    out.append(f.flush())
    return "".join(out)


def test_random_splits_match_reference():
    rng = random.Random(0)
    alphabet = "ab\nXY"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        stops = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(0, 3))]
        assert stream(text, stops, rng) == reference(text, stops), (text, stops)
