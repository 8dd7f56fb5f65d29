"""Watch fan-out: a batch of events is converted and serialised once, whoever watches.

A run followed by many Watch streams hands each of them the same committed events; each
stream used to build its own WatchResponse and gRPC serialised it once per stream. Here
the first stream to send a batch keeps the serialised message, and every other stream
sending the same batch (same run, same events, same watermark) sends those bytes
(Watch's response serializer passes bytes through, see decoding.py). Committed events
never change, so a batch is named by its run (its id and its creation: a deleted run's id
may name a new run, whose log has the same sequences), the sequences and commit time of its
first and last event, and the watermark.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from runservice import model
from runservice.server import convert

_ENTRIES = 256
"""Batches kept: enough for every stream of a run to catch up with the last few commits."""
_LARGEST = 256 * 1024
"""Messages larger than this are not kept (memory); each stream serialises its own."""

Key = tuple[str, float, int, float, int, float, int]


class SharedReplies:
    """Serialised Watch messages of recent event batches, shared by every stream; `limit`
    is the largest message built (see `convert.reply_limit`)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._kept: OrderedDict[Key, list[bytes]] = OrderedDict()

    def replies(self, events: Sequence[model.Event], watermark: int, *, born: float) -> list[bytes]:
        """The Watch messages of `events` (no workflow states) of the run created at `born`,
        serialised."""
        first, last = events[0], events[-1]
        key = (first.run_id, born, first.sequence, first.time, last.sequence, last.time, watermark)
        kept = self._kept.get(key)
        if kept is not None:
            self._kept.move_to_end(key)
            return kept
        made = [
            reply.SerializeToString()
            for reply in convert.watch_replies(events, (), watermark, limit=self._limit)
        ]
        if sum(len(data) for data in made) <= _LARGEST:
            self._kept[key] = made
            if len(self._kept) > _ENTRIES:
                self._kept.popitem(last=False)
        return made
