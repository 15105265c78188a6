"""``make bench``: load-tests a local stack and measures it against its own floors.

``python -m bench --help`` lists the flags; docs/performance.md explains the
phases, the figures and how to read them. The load generator is locust
(headless, in its own processes: it monkey-patches with gevent, while the
floors use nameko, which imports eventlet); this package orchestrates them.
"""
