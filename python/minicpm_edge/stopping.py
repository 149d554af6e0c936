"""Stop strings over a stream of text deltas.

Text that could still turn out to be the beginning of a stop string is held
back until the next delta decides it, so a stop string never leaks into the
output, even when it arrives split across tokens.
"""
from __future__ import annotations


class StopStringFilter:
    def __init__(self, stops: list[str] | None):
        self.stops = [s for s in (stops or []) if s]
        self._pending = ""
        self.stopped = False

    def feed(self, delta: str) -> str:
        """Returns the part of the text that is safe to emit now."""
        if self.stopped:
            return ""
        text = self._pending + delta
        if not self.stops:
            self._pending = ""
            return text
        cut = min((i for i in (text.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped = True
            self._pending = ""
            return text[:cut]
        hold = 0
        for s in self.stops:
            for k in range(min(len(s) - 1, len(text)), 0, -1):
                if text.endswith(s[:k]):
                    hold = max(hold, k)
                    break
        self._pending = text[len(text) - hold:] if hold else ""
        return text[: len(text) - hold]

    def flush(self) -> str:
        """Text held back when the stream ends without a stop string."""
        out, self._pending = ("" if self.stopped else self._pending), ""
        return out
