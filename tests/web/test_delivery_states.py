"""A message's state only moves forward, whatever order the provider reports in."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from providers.events import advances
from storage.models import MessageState

REPORTED = [
    MessageState.SENT,
    MessageState.DELIVERED,
    MessageState.UNDELIVERED,
    MessageState.FAILED,
]
FINAL = {MessageState.DELIVERED, MessageState.UNDELIVERED, MessageState.FAILED}


@given(st.lists(st.sampled_from(REPORTED), max_size=8))
def test_first_final_outcome_wins(reports):
    state = MessageState.SENDING
    for target in reports:
        if advances(state, target):
            state = target
    finals = [report for report in reports if report in FINAL]
    if finals:
        assert state == finals[0]
    elif reports:
        assert state == MessageState.SENT
    else:
        assert state == MessageState.SENDING


def test_skipped_and_unknown_states_never_move():
    assert not advances(MessageState.SKIPPED, MessageState.DELIVERED)
    assert not advances("something-else", MessageState.SENT)
    assert not advances(MessageState.DELIVERED, MessageState.SENT)
    assert advances(MessageState.UNCERTAIN, MessageState.SENT)
