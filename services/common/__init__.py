"""Cross-cutting machinery shared by every service.

Config, logging, typed RPC errors, the event envelope, the transactional
outbox, idempotent consumers with dead-lettering, and retries live here once.
Services import from this package and never copy it.
"""
