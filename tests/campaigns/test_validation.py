"""Every validation rule, each with an example that breaks it, and the real content passing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import time
from pathlib import Path

import pytest

from campaigns.definitions import Sequence, load_sequence
from campaigns.validation import ValidationReport, validate_named, validate_sequence
from core.settings import Settings

Check = Callable[..., ValidationReport]
Edit = Callable[[str, str, str], None]
StepChanged = Callable[..., Sequence]


def _one(report: ValidationReport, *needles: str) -> str:
    """The single problem that mentions every needle."""
    found = [p for p in report.problems if all(n in p for n in needles)]
    assert found, f"no problem with {needles} in {report.problems}"
    return found[0]


@pytest.mark.parametrize("name", ["spasm-relief", "demo"])
def test_the_shipped_sequences_are_valid(name: str, settings: Settings) -> None:
    report = validate_named(name, settings)
    assert report.problems == []
    # The only warnings: a contact whose name is outside GSM-7 would get a longer (UCS-2) text,
    # and the demo's 08:00-21:00 text is narrowed to 08:00-20:00 for FL, OK and MD numbers.
    # Subjects naming the topic ("back spasms") or the care ("spinal decompression") are clean.
    expected = ("name outside GSM-7", "get this text only 08:00-20:00")
    assert all(any(e in warning for e in expected) for warning in report.warnings), report.warnings


def test_a_definition_that_does_not_load_is_a_problem(tmp_path: Path, settings: Settings) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('name = "broken"\ntitle = "x"\ntemplate_folder = "spasm-relief"\n')
    report = validate_named(broken, settings)
    assert not report.ok and "steps" in report.problems[0]


def test_missing_footer(check: Check, edit: Edit) -> None:
    start = '  <div class="footer">'
    edit("layouts/email.html", start, '  <div class="gone" hidden>{#')
    edit(
        "layouts/email.html", "</p>\n  </div>\n</div>\n</body>", "</p>#}\n  </div>\n</div>\n</body>"
    )
    report = check()
    _one(report, "step 1 (welcome, email)", "HTML part footer lacks the postal address")
    _one(report, "HTML part footer does not say why")
    _one(report, "HTML part has no unsubscribe link")


def test_missing_postal_address_in_the_text_part(check: Check, edit: Edit) -> None:
    edit("layouts/email.txt", "{{ clinic.postal_address }}\n", "")
    problem = _one(check(), "text part footer lacks the postal address")
    assert "CAN-SPAM" in problem


def test_missing_unsubscribe_link(check: Check, edit: Edit) -> None:
    edit("layouts/email.html", '<a href="{{ unsubscribe_url }}">Unsubscribe</a> &middot; ', "")
    _one(check(), "HTML part has no unsubscribe link")


def test_missing_booking_call_to_action(check: Check, edit: Edit) -> None:
    edit("layouts/email.txt", ": {{ booking_link() }}", ": call us")
    _one(check(), "text part has no booking call to action")


def test_missing_clinic_header(check: Check, edit: Edit) -> None:
    edit("layouts/email.html", '<div class="header">{{ clinic.name }}</div>', "")
    edit("spasm-relief/01-welcome.html", "The team at {{ clinic.name }}", "The team")
    _one(check(), "step 1", "no clinic header")


def test_sms_without_stop_wording(check: Check, edit: Edit) -> None:
    edit("layouts/sms.txt", " Reply STOP to opt out.", " Thanks!")
    report = check()
    _one(report, "step 2 (cycle-text, sms)", "does not end with opt-out wording")
    _one(report, "step 6 (questions-text, sms)", "does not end with opt-out wording")


def test_stop_wording_must_end_the_text(check: Check, edit: Edit) -> None:
    edit("layouts/sms.txt", " Reply STOP to opt out.", " Reply STOP to opt out. See you soon!")
    _one(check(), "step 2", "does not end with opt-out wording")


def test_sms_without_the_sender_name(check: Check, edit: Edit) -> None:
    edit("layouts/sms.txt", "{{ clinic.name }}: ", "")
    _one(check(), "step 2", "does not name the sender", "CTIA")


def test_too_many_segments(check: Check, spasm_relief: Sequence, step_changed: StepChanged) -> None:
    report = check(step_changed(spasm_relief, 1, max_segments=1))
    problem = _one(report, "step 2 (cycle-text, sms)", "typical", "the limit is 1")
    assert "GSM-7 segments" in problem


def test_ucs2_is_a_warning_that_names_the_characters(check: Check, edit: Edit) -> None:
    edit("spasm-relief/02-cycle.sms.txt", "what is underneath", "what’s underneath")  # noqa: RUF001
    report = check()
    warning = next(w for w in report.warnings if "UCS-2 (67" in w)
    assert "U+2019" in warning
    _one(report, "step 2", "typical", "UCS-2 segments")  # and it no longer fits two parts


@pytest.mark.parametrize(
    ("start", "end"), [("07:00", "20:00"), ("09:00", "21:30"), ("06:00", "23:00")]
)
def test_sms_window_outside_tcpa_hours(
    check: Check, spasm_relief: Sequence, step_changed: StepChanged, start: str, end: str
) -> None:
    window = {"days": "mon-fri", "start": start, "end": end}
    problem = _one(check(step_changed(spasm_relief, 1, window=window)), "step 2", "TCPA")
    assert f"{start}-{end}" in problem


def test_email_windows_may_be_early(
    check: Check, spasm_relief: Sequence, step_changed: StepChanged
) -> None:
    window = {"days": "mon-fri", "start": "06:00", "end": "22:00"}
    assert check(step_changed(spasm_relief, 0, window=window)).problems == []


def test_a_text_step_without_a_window_gets_tcpa_hours(tmp_path: Path) -> None:
    path = tmp_path / "x.toml"
    path.write_text(
        'name = "x"\ntitle = "x"\ntemplate_folder = "spasm-relief"\n'
        '[[steps]]\nname = "t"\nchannel = "sms"\ntemplate = "02-cycle"\n'
    )
    window = load_sequence(path).steps[0].window
    assert (f"{window.start:%H:%M}", f"{window.end:%H:%M}") == ("08:00", "21:00")


def test_window_outside_the_configured_texting_hours(
    check: Check, spasm_relief: Sequence, step_changed: StepChanged, settings: Settings
) -> None:
    """A clinic may set stricter texting hours than TCPA; a window outside them never sends."""
    scheduler = settings.scheduler.model_copy(update={"sms_quiet_hours_start": time(9, 30)})
    stricter = settings.model_copy(update={"scheduler": scheduler})
    sequence = step_changed(spasm_relief, 1, window={"start": "10:00", "end": "18:00"})

    report = validate_sequence(sequence, stricter)

    _one(report, "step 2", "never overlaps the texting hours set in [scheduler]")
    assert validate_sequence(sequence, settings).problems == []


def test_unknown_template(check: Check, spasm_relief: Sequence, step_changed: StepChanged) -> None:
    report = check(step_changed(spasm_relief, 2, template="99-missing"))
    assert _one(report, "step 3", "unknown template spasm-relief/99-missing.subject.txt")
    assert not any("does not render" in p for p in report.problems if "step 3" in p)


def test_channel_and_template_kind_must_agree(
    check: Check, spasm_relief: Sequence, step_changed: StepChanged
) -> None:
    report = check(step_changed(spasm_relief, 1, channel="email", window={}))
    _one(report, "step 2 (cycle-text, email)", "unknown template spasm-relief/02-cycle.html")


def test_missing_variable_under_strict_undefined(check: Check, edit: Edit) -> None:
    edit("spasm-relief/03-cycle.txt", "Last time", "{{ clinic.fax }} Last time")
    _one(check(), "step 3", "does not render", "missing variable", "fax")


def test_undefined_name_in_a_branch_never_taken(check: Check, edit: Edit) -> None:
    edit("spasm-relief/03-cycle.txt", "Last time", "{% if false %}{{ coupon }}{% endif %}Last time")
    _one(check(), "step 3", "'coupon', which no message provides")


def test_template_reaching_a_field_not_allow_listed(check: Check, edit: Edit) -> None:
    edit(
        "spasm-relief/02-cycle.sms.txt",
        "Hi {{",
        "{% if false %}{{ contact.phone }}{% endif %}Hi {{",
    )
    problem = _one(check(), "step 2", "contact.phone", "not an allow-listed field")
    assert "first_name, last_name" in problem


def test_whole_contact_is_refused(check: Check, edit: Edit) -> None:
    edit("spasm-relief/01-welcome.subject.txt", "back spasms", "{{ contact|list|length }} back")
    _one(check(), "step 1", "uses `contact` as a whole")


def test_health_custom_field_is_refused(check: Check, spasm_relief: Sequence) -> None:
    data = spasm_relief.snapshot()
    data["custom_fields"] = ["diagnosis", "referral_source"]
    report = check(Sequence.model_validate(data))
    _one(report, "custom field 'diagnosis' looks like health information")
    assert not any("referral_source" in p for p in report.problems)


def test_custom_field_not_declared_is_unreachable(check: Check, edit: Edit) -> None:
    edit("spasm-relief/01-welcome.subject.txt", "back spasms", "{{ contact.condition }} spasms")
    _one(check(), "step 1", "contact.condition", "not an allow-listed field")


@pytest.mark.parametrize(
    "escape",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ booking_link.__globals__ }}",
        "{{ '{0.__class__}'.format('') }}",
        "{{ 'x' * 1000000 }}",
    ],
)
def test_sandbox_escapes_fail_safely(check: Check, edit: Edit, escape: str) -> None:
    edit("spasm-relief/06-questions.sms.txt", "Hi {{", escape + " Hi {{")
    report = check()  # reports, never raises
    problems = [p for p in report.problems if "step 6" in p]
    assert problems and all("<class" not in p for p in problems)
    assert any("not allowed" in p or "internals" in p for p in problems)


def test_unregistered_link_destination(check: Check, edit: Edit) -> None:
    edit("spasm-relief/04-decompression.txt", "Hi {{", "{{ link('promo') }} Hi {{")
    report = check()
    _one(report, "step 4", "links to 'promo', which is not a registered destination")
    _one(report, "step 4", "does not render", "'promo' is not registered")


def test_destination_registered_by_the_sequence_is_allowed(
    check: Check, edit: Edit, spasm_relief: Sequence
) -> None:
    edit("spasm-relief/04-decompression.txt", "Hi {{", "Read more: {{ link('promo') }}\nHi {{")
    data = spasm_relief.snapshot()
    data["link_destinations"] = {"promo": "https://spinaldecompressionla.com/spring"}
    report = check(Sequence.model_validate(data))
    assert report.problems == []
    assert any("several destinations" in w for w in report.warnings)


def test_computed_link_destination(check: Check, edit: Edit) -> None:
    edit("spasm-relief/04-decompression.txt", "Hi {{", "{{ link(step) }} Hi {{")
    _one(check(), "step 4", "quoted name")


def test_syntax_error_names_the_line(check: Check, edit: Edit) -> None:
    edit("spasm-relief/05-first-visit.html", "<h2>We listen first</h2>", "{% if %}")
    _one(check(), "step 5", "05-first-visit.html line")


def test_cure_wording_is_a_warning(check: Check, edit: Edit) -> None:
    edit("spasm-relief/07-invitation.txt", "Whenever", "Guaranteed pain-free results. Whenever")
    report = check()
    assert report.problems == [] or all("step 7" not in p for p in report.problems)
    found = [w for w in report.warnings if "step 7" in w and "promise of a cure" in w]
    assert any("guaranteed" in w for w in found) and any("pain-free" in w for w in found)


def test_a_health_word_in_a_subject_is_reported_whatever_wrote_the_sequence(
    check: Check, edit: Edit
) -> None:
    edit("spasm-relief/07-invitation.subject.txt", "An open invitation", "Your sciatica, eased")
    edit("spasm-relief/es/05-first-visit.subject.txt", "Cómo es", "Su dolor lumbar:")
    report = check()
    found = [w for w in report.warnings if "the subject mentions a health detail" in w]
    assert any("step 7" in w and "(sciatica)" in w for w in found), found
    assert any("step 5" in w and "[es]" in w and "(dolor, lumbar)" in w for w in found), found
    clean = "step 5 (first-visit, email): the subject mentions"  # the English subject is clean
    assert not any(clean in w for w in found)


def test_missing_clinic_phone(check: Check, edit: Edit) -> None:
    edit("layouts/sms.txt", "{{ clinic.name }}: ", "SDLA: ")
    edit("spasm-relief/02-cycle.sms.txt", " or call {{ clinic.phone }}", "")
    _one(check(), "step 2", "does not give the clinic's number 888-20-DECOM")
