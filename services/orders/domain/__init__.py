"""The orders domain: the saga state machine and pricing, pure Python with its own exceptions."""
