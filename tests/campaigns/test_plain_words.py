"""The launch check's findings reworded for marketers, one place for the wording."""

from __future__ import annotations

from campaigns.plain_words import PlainFinding, reword


def test_a_step_finding_says_where_in_words_and_what_to_do() -> None:
    line = (
        "back-care step 2 (nudge, sms) [es]: the text does not end with opt-out wording, e.g. "
        '"Reply STOP to opt out."'
    )
    found = reword(line)
    assert found.step == 2 and found.language == "es"
    assert found.message.startswith("Step 2 (text, Spanish): This text has no way to stop")


def test_segments_over_the_limit_read_as_cost() -> None:
    line = (
        "back-care step 3 (nudge, sms): for a contact with a long name the text is 3 GSM-7 "
        "segments (400 units); the limit is 2 (max_segments)"
    )
    assert reword(line).message == (
        "Step 3 (text, English): Over 2 segments: 3 for a contact with a long name "
        "(each segment costs). Shorten the text or raise its segment limit."
    )


def test_a_template_path_is_dropped_from_a_refused_placeholder() -> None:
    line = (
        "back-care step 1 (welcome, email): does not render for a contact with a typical name: "
        "back-care/01-welcome.html line 1: the email body: only placeholders like ..."
    )
    assert (
        reword(line).message
        == "Step 1 (email, English): The email body: only placeholders like ..."
    )


def test_an_unknown_finding_keeps_its_own_words() -> None:
    assert reword("back-care: something new") == PlainFinding("Back-care: something new")
    odd = reword("back-care step 1 (welcome, email): a rule nobody reworded")
    assert odd.message == "Step 1 (email, English): A rule nobody reworded"
