"""/auth: registration, login and the caller's own profile."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from gateway import rpc
from gateway.auth import current_user, issue_token, login_required
from gateway.openapi import operation
from gateway.schemas import (
    CustomerResponse,
    LoginRequest,
    ProfileUpdateRequest,
    RegisterRequest,
    TokenResponse,
)
from gateway.validation import json_body

bp = Blueprint("auth", __name__, url_prefix="/auth")


@bp.post("/register")
@operation("Register a customer account", "auth", body=RegisterRequest, errors=(409,),
           responses={201: (CustomerResponse,
                             "Registered; `role` says which role was granted (always customer)")},
           location=True,
           description="A `role` in the body is ignored: self-registration always creates a customer.")
def register() -> ResponseReturnValue:
    data = json_body(RegisterRequest())  # drops unknown keys, "role" included
    customer = rpc.call("customers", "register", data)
    response = jsonify(customer)
    response.status_code = 201
    response.headers["Location"] = "/auth/me"
    return response


@bp.post("/login")
@operation("Exchange email and password for an access token", "auth", body=LoginRequest, errors=(401,),
           responses={200: (TokenResponse, "A bearer token for the Authorization header")})
def login() -> ResponseReturnValue:
    data = json_body(LoginRequest())
    customer = rpc.call("customers", "authenticate", data["email"], data["password"])
    settings = current_app.extensions["gateway.settings"]
    return jsonify({
        "access_token": issue_token(settings, customer),
        "token_type": "Bearer",
        "expires_in": settings.jwt_ttl_seconds,
        "user": customer,
    })


@bp.get("/me")
@operation("The caller's profile", "auth", responses={200: (CustomerResponse, "The profile")}, errors=(404,))
@login_required
def me() -> ResponseReturnValue:
    return jsonify(rpc.call("customers", "get_customer", current_user().id))


@bp.put("/me")
@operation("Change the caller's name", "auth", body=ProfileUpdateRequest, errors=(404,),
           responses={200: (CustomerResponse, "The updated profile")})
@login_required
def update_me() -> ResponseReturnValue:
    data = json_body(ProfileUpdateRequest())
    return jsonify(rpc.call("customers", "update_profile", current_user().id, data))
