"""``make bench``: load-tests a local stack, judges it against the targets of docs/performance.md and
measures it against its own floors.

``python -m bench --help`` lists the flags; docs/performance.md explains the
phases, the figures and how to read them. The load generators run in processes
of their own: vegeta (bench/vegeta.py) at constant rates for the knees and the saga
phase, locust (headless; it monkey-patches with gevent, while the floors use nameko,
which imports eventlet) for the realistic mix; this package orchestrates them.
"""
