import pytest

from services.orders.domain import saga
from services.orders.domain.saga import SagaState, Status, Step


def run_forward(state: SagaState) -> list[Step]:
    steps = []
    while (step := saga.next_step(state)) is not None:
        steps.append(step)
        saga.complete(state, step)
    return steps


def test_happy_path_runs_the_forward_steps_in_order_and_confirms():
    state = SagaState()
    # order_confirmed commits the stock and requests the shipment: no step of the saga's own
    assert run_forward(state) == [Step.RESERVE_STOCK, Step.CHARGE_PAYMENT]
    assert state.status is Status.CONFIRMED and state.stock_committed and state.shipment_requested
    assert saga.shipped(state) is Status.SHIPPED
    assert saga.delivered(state) is Status.DELIVERED
    assert saga.next_step(state) is None


def test_out_of_stock_rejects_with_nothing_to_compensate():
    state = SagaState()
    assert saga.refuse(state, Step.RESERVE_STOCK, "insufficient stock") is Status.REJECTED
    assert state.reason == "insufficient stock"
    assert saga.next_step(state) is None


def test_declined_payment_releases_stock_then_cancels():
    state = SagaState()
    saga.complete(state, Step.RESERVE_STOCK)
    assert saga.refuse(state, Step.CHARGE_PAYMENT, "payment declined: card_declined") is None
    assert saga.next_step(state) is Step.RELEASE_STOCK
    assert saga.complete(state, Step.RELEASE_STOCK) is Status.CANCELLED
    assert state.reason == "payment declined: card_declined"


def test_customer_cancel_after_confirmation_undoes_every_step_in_reverse():
    state = SagaState()
    run_forward(state)
    assert saga.request_cancel(state, "changed my mind") is True
    undo = []
    while (step := saga.next_step(state)) is not None:
        undo.append(step)
        saga.complete(state, step)
    assert undo == [Step.CANCEL_SHIPMENT, Step.REFUND_PAYMENT, Step.RELEASE_STOCK]
    assert state.status is Status.CANCELLED and state.reason == "changed my mind"


def test_cancel_while_a_step_is_in_flight_compensates_after_it():
    state = SagaState()
    saga.complete(state, Step.RESERVE_STOCK)
    saga.request_cancel(state, "cancelled by customer")
    # the charge that was in flight completes before the runner sees the request
    saga.complete(state, Step.CHARGE_PAYMENT)
    assert saga.next_step(state) is Step.REFUND_PAYMENT


def test_cancel_is_idempotent_and_refused_once_shipped():
    state = SagaState()
    assert saga.request_cancel(state, "x") is True
    assert saga.request_cancel(state, "x") is False
    shipped = SagaState()
    run_forward(shipped)
    saga.shipped(shipped)
    with pytest.raises(saga.CannotCancel):
        saga.request_cancel(shipped, "too late")


def test_shipment_that_left_before_the_cancellation_keeps_the_order():
    state = SagaState()
    run_forward(state)
    saga.request_cancel(state, "x")
    assert saga.refuse(state, Step.CANCEL_SHIPMENT, "already shipped") is None
    assert state.compensating is False and state.status is Status.CONFIRMED
    assert saga.shipped(state) is Status.SHIPPED


def test_delivered_overtaking_shipped_still_ends_delivered():
    state = SagaState()
    run_forward(state)
    assert saga.delivered(state) is Status.DELIVERED
    assert saga.shipped(state) is None


def test_only_business_steps_can_be_refused():
    with pytest.raises(ValueError):
        saga.refuse(SagaState(), Step.COMMIT_STOCK, "no")


def test_a_resumed_saga_repeats_only_the_step_that_was_in_flight():
    # persisted after RESERVE_STOCK; the process died during CHARGE_PAYMENT
    state = SagaState(stock_reserved=True)
    assert saga.next_step(state) is Step.CHARGE_PAYMENT


def test_cancel_before_any_step_succeeded_settles_with_nothing_to_undo():
    state = SagaState()
    assert saga.request_cancel(state, "changed my mind") is True
    assert saga.next_step(state) is None
    assert saga.settle(state) is Status.CANCELLED
    assert (state.status, state.compensating, state.reason) == (Status.CANCELLED, False, "changed my mind")
    assert saga.settle(state) is None  # once: a settled saga has nothing more to do


def test_an_order_a_previous_version_left_between_charge_and_commit_still_completes():
    # before order_confirmed carried them, commit and shipment request were steps of the saga's own
    state = SagaState(stock_reserved=True, payment_charged=True)
    assert run_forward(state) == [Step.COMMIT_STOCK, Step.REQUEST_SHIPMENT]
    assert state.status is Status.CONFIRMED and state.shipment_requested


def test_a_cancellation_after_confirmation_cancels_the_shipment_refunds_and_releases():
    state = SagaState()
    run_forward(state)
    assert saga.request_cancel(state, "changed my mind") is True
    steps = []
    while (step := saga.next_step(state)) is not None:
        steps.append(step)
        saga.complete(state, step)
    assert steps == [Step.CANCEL_SHIPMENT, Step.REFUND_PAYMENT, Step.RELEASE_STOCK]
    assert state.status is Status.CANCELLED
