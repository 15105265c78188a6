"""A small in-process cache with a time-to-live, for reads that may be a moment stale.

One instance per process (the gateway's product reads, the orders service's price book), shared
by its threads or greenthreads. An entry lives ``ttl`` seconds (``ttl`` 0 turns the cache off:
every read loads).
``clear()`` drops everything and also keeps a load that started before it from
storing its (possibly older) answer afterwards. Failed loads are not cached.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

#: entries kept at most; when full, expired entries go first, then everything
MAX_ENTRIES = 1024


class TtlCache:
    def __init__(self, ttl: float, max_entries: int = MAX_ENTRIES,
                 clock: Callable[[], float] = time.monotonic):
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._generation = 0
        self.hits = 0
        self.misses = 0

    def get_or_load(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The cached value of ``key`` while it is fresh, else ``load()`` (stored if nothing was
        cleared meanwhile)."""
        return self.get_many([key], lambda _missing: {key: load()})[key]

    def get_many(self, keys: Iterable[Hashable],
                 load_many: Callable[[list[Hashable]], Mapping[Hashable, Any]]) -> dict[Hashable, Any]:
        """The fresh cached values of ``keys``, and ``load_many(the others)`` for the rest, in one
        call (what it returns is stored if nothing was cleared meanwhile; a key it leaves out is
        not)."""
        keys = list(keys)
        if self.ttl <= 0:
            return dict(load_many(keys))
        now = self._clock()
        found: dict[Hashable, Any] = {}
        missing = []
        for key in keys:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > now:
                found[key] = entry[1]
            else:
                missing.append(key)
        self.hits += len(found)
        if not missing:
            return found
        self.misses += len(missing)
        generation = self._generation
        loaded = load_many(missing)
        with self._lock:
            if generation == self._generation:
                for key, value in loaded.items():
                    if len(self._entries) >= self.max_entries:
                        self._evict(self._clock())
                    self._entries[key] = (now + self.ttl, value)
        found.update(loaded)
        return found

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _evict(self, now: float) -> None:
        for key in [k for k, (expires, _) in self._entries.items() if expires <= now]:
            del self._entries[key]
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
