"""Stop strings over a stream of text deltas.

Text that could still turn out to be the beginning of a stop string is held
back until later deltas decide it, so a stop string never leaks into the
output, even when it arrives split across tokens, and the output is cut at the
earliest stop string of the whole text.
"""
from __future__ import annotations


class StopStringFilter:
    def __init__(self, stops: list[str] | None):
        self.stops = [s for s in (stops or []) if s]
        self._pending = ""
        self.stopped = False

    def _first_full_match(self, text: str) -> int:
        return min((i for i in (text.find(s) for s in self.stops) if i >= 0), default=-1)

    def _first_partial_start(self, text: str) -> int:
        """Earliest position from which the end of text is a proper prefix of a stop string."""
        start = len(text)
        for s in self.stops:
            for k in range(min(len(s) - 1, len(text)), 0, -1):
                if text.endswith(s[:k]):
                    start = min(start, len(text) - k)
                    break
        return start

    def feed(self, delta: str) -> str:
        """Returns the part of the text that is safe to emit now."""
        if self.stopped:
            return ""
        text = self._pending + delta
        if not self.stops:
            self._pending = ""
            return text
        full = self._first_full_match(text)
        partial = self._first_partial_start(text)
        if full >= 0 and full <= partial:
            self.stopped = True
            self._pending = ""
            return text[:full]
        self._pending = text[partial:]
        return text[:partial]

    def flush(self) -> str:
        """Text held back when the stream ends."""
        text, self._pending = self._pending, ""
        if self.stopped:
            return ""
        full = self._first_full_match(text)
        if full >= 0:
            self.stopped = True
            return text[:full]
        return text
