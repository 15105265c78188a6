"""Silence eventlet's deprecation banner, and nothing else (docs/eventlet.md).

eventlet 0.41 announces on its first import, with
``warnings.warn(_DEPRECATED, EventletDeprecationWarning, stacklevel=2)``, that it is in bugfix
mode. nameko 2.14 needs it, so every process printed that banner. The category is a plain
``Warning`` subclass (not a DeprecationWarning) and stacklevel=2 attributes the warning to whichever
module imports eventlet first; a ``-W``/PYTHONWARNINGS option cannot match it either, because the
message starts with a newline and those options match their text literally from the start.

So each entrypoint calls :func:`silence_eventlet_banner` before anything imports eventlet: it
imports eventlet itself under a filter for that message from this module only. Python then has
eventlet in ``sys.modules`` and never runs its import again, so no later import warns; every other
warning, eventlet's own fork warning included, keeps the default filters.
"""

from __future__ import annotations

import warnings

#: the first words of eventlet's banner (after its leading newline)
BANNER = r"\s*Eventlet is deprecated\. It is currently being maintained in bugfix mode"


def silence_eventlet_banner() -> None:
    warnings.filterwarnings("ignore", message=BANNER, category=Warning, module=__name__ + r"\Z")
    import eventlet  # noqa: F401  (the import is the point: it warns here, under the filter)
