from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from services.common.schemas import Id
from services.customers.domain import PASSWORD_MAX_LENGTH, PASSWORD_MIN_LENGTH, normalize_email


class EmailAddress(fields.Email):
    """An email address, validated after normalisation so ' Ann@X.org ' is accepted as 'ann@x.org'."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        return normalize_email(super()._deserialize(value, attr, data, **kwargs))


class Name(fields.String):
    """A display name without surrounding whitespace; blank is not a name."""

    def __init__(self, **kw: Any):
        super().__init__(validate=validate.Length(min=1, max=200), **kw)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()



def Email(**kw: Any) -> EmailAddress:
    return EmailAddress(validate=validate.Length(max=254), **kw)


def Password(**kw: Any) -> fields.String:
    return fields.String(
        load_only=True, validate=validate.Length(min=PASSWORD_MIN_LENGTH, max=PASSWORD_MAX_LENGTH), **kw
    )


class CustomerSchema(Schema):
    """What leaves the service: never the password hash."""

    id = Id(dump_only=True)
    name = fields.String(dump_only=True)
    email = fields.String(dump_only=True)
    role = fields.String(dump_only=True)
    created_at = fields.DateTime(dump_only=True)


class RegistrationSchema(Schema):
    """Self-registration; there is no role field, so a client cannot ask for one."""

    name = Name(required=True)
    email = Email(required=True)
    password = Password(required=True)


class CredentialsSchema(Schema):
    email = Email(required=True)
    # no minimum: a short password is simply wrong, but the maximum still bounds hashing work
    password = fields.String(required=True, validate=validate.Length(min=1, max=PASSWORD_MAX_LENGTH))


class ProfileUpdateSchema(Schema):
    name = Name(required=True)


class AdminSchema(Schema):
    name = Name(required=True)
    email = Email(required=True)
    password = Password(required=True)


# --- events -----------------------------------------------------------------


class CustomerRegisteredEventSchema(Schema):
    customer_id = Id(required=True)
    email = fields.Email(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))


class CustomerUpdatedEventSchema(Schema):
    """The customer and the profile fields that changed (name is the only one)."""

    customer_id = Id(required=True)
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))


class AdminEnsuredEventSchema(Schema):
    customer_id = Id(required=True)
    email = fields.Email(required=True)
    #: False when the account already was an admin (only its password was reset)
    promoted = fields.Boolean(required=True)


EVENT_SCHEMAS: dict[str, Schema] = {
    "customer_registered": CustomerRegisteredEventSchema(),
    "customer_updated": CustomerUpdatedEventSchema(),
    "admin_ensured": AdminEnsuredEventSchema(),
}
