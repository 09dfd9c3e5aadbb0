"""The input's text and entries as the host sends them: one string, and
spans of it given in UTF-8 bytes (the WIT interface's layout)."""

from __future__ import annotations

from typing import Callable


class Pool:
    """Reads spans (``start``, ``len`` in UTF-8 bytes) of one text, and
    runs of named entries whose text values are spans too."""

    __slots__ = ("text", "raw", "entries", "is_text")

    def __init__(self, text: str, entries: list, is_text: Callable[[object], bool]):
        self.text = text
        # ASCII text: byte offsets are string indexes, no copy needed.
        self.raw = None if text.isascii() else text.encode()
        self.entries = entries
        self.is_text = is_text

    def get(self, span) -> str:
        if self.raw is None:
            return self.text[span.start : span.start + span.len]
        return self.raw[span.start : span.start + span.len].decode()

    def opt(self, span):
        return None if span is None else self.get(span)

    def run(self, r) -> list:
        out = []
        for e in self.entries[r.start : r.start + r.len]:
            v = e.value
            out.append((self.get(e.name), self.get(v.value) if self.is_text(v) else v.value))
        return out
