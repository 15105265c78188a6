"""The gateway's blueprints; each route is a few lines over ``gateway.rpc.call``."""

from __future__ import annotations

from flask import Blueprint

from gateway.blueprints.account import bp as account
from gateway.blueprints.analytics import bp as analytics
from gateway.blueprints.auth import bp as auth
from gateway.blueprints.cart import bp as cart
from gateway.blueprints.inventory import bp as inventory
from gateway.blueprints.ops import bp as ops
from gateway.blueprints.orders import bp as orders
from gateway.blueprints.products import bp as products

#: the blueprints under /api: rate limited per user
API_BLUEPRINTS: tuple[Blueprint, ...] = (products, inventory, cart, orders, account, analytics)
AUTH_BLUEPRINTS: tuple[Blueprint, ...] = (auth,)
ALL_BLUEPRINTS: tuple[Blueprint, ...] = (*API_BLUEPRINTS, *AUTH_BLUEPRINTS, ops)
