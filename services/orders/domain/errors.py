"""What the orders domain refuses, in its own terms; service.py maps these to typed RPC errors."""

from __future__ import annotations

from typing import Any


class OrderError(Exception):
    """Base of every refusal of the orders domain and use cases."""


class OrderNotFound(OrderError):
    """No such order, or not the caller's (the two are not told apart)."""


class InvalidOrder(OrderError):
    """The order cannot be placed as asked; ``details`` says which field and why."""

    def __init__(self, message: str, fields: dict[str, Any]):
        super().__init__(message)
        self.details = {"fields": fields}


class CannotCancel(OrderError):
    """The order is past the point where a customer may cancel it."""


class NotStalled(OrderError):
    """Only a stalled saga can be resumed by an operator."""
