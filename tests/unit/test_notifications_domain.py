import pytest

from services.notifications.domain import EMAIL, SMS, TEMPLATES, compose

ORDER = {"customer_id": 7, "order_id": 42}


def test_welcome_email_greets_by_name_when_known():
    [message] = compose("customer_registered", {"customer_id": 7, "name": "Ada"})
    assert message.channel == EMAIL and "Welcome" in message.subject and "Ada" in message.body
    [anonymous] = compose("customer_registered", {"customer_id": 7})
    assert "Hi there" in anonymous.body


@pytest.mark.parametrize("event_type", sorted(set(TEMPLATES) - {"customer_registered"}))
def test_every_order_message_names_the_order(event_type):
    messages = compose(event_type, ORDER)
    assert messages
    for message in messages:
        assert "#42" in message.subject and "#42" in message.body
        assert message.channel in (EMAIL, SMS)


@pytest.mark.parametrize("event_type", ["order_rejected", "order_cancelled", "payment_declined"])
def test_failures_give_the_reason(event_type):
    [message] = compose(event_type, {**ORDER, "reason": "out of stock"})
    assert "out of stock" in message.body
    [unexplained] = compose(event_type, ORDER)
    assert "no reason was given" in unexplained.body


def test_shipped_sends_an_email_and_an_sms_with_the_tracking_number():
    messages = compose("order_shipped", {**ORDER, "tracking_number": "TRK0123456789AB"})
    assert [m.channel for m in messages] == [EMAIL, SMS]
    assert all("TRK0123456789AB" in m.body for m in messages)


def test_single_channel_events():
    for event_type in ("order_created", "order_confirmed", "order_delivered"):
        assert [m.channel for m in compose(event_type, ORDER)] == [EMAIL]


def test_unknown_event_types_have_no_template():
    with pytest.raises(KeyError):
        compose("order_teleported", ORDER)
