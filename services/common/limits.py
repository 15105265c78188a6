"""Limits every service and the gateway agree on. Plain values: importable from any layer."""

#: ids are 32-bit database integers
MAX_ID = 2**31 - 1
#: the most of one product a single order or reservation may hold
MAX_QUANTITY = 10_000
#: the largest amount of money any record holds
MAX_CENTS = 10**12
#: the items one batch RPC (inventory.reserve_many, payments.charge_many) carries at most
MAX_BATCH_ITEMS = 500
