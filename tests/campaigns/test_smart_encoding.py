"""[sms] smart_encoding: off, "está" makes a text UCS-2; on, it is sent as "esta" in GSM-7, and
the composer, validate and `sms-info` all count it so."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from campaigns.validation import sample_composer
from core.settings import load_settings
from templates.renderer import RenderedSms
from templates.sms_segments import smart_encode, sms_info
from tests.campaigns.test_content_cli import nurture as nurture  # the CLI-in-process fixture

# 99 characters: one GSM-7 segment, two UCS-2 ones
TEXT = (
    "Hola, ¿cómo está? Su espalda está en buenas manos: llame al 888-20-DECOM o agende su cita "
    "hoy mismo"
)


def test_smart_encoding_changes_the_segments_of_a_text_with_esta() -> None:
    assert len(TEXT) == 99
    off, on = sms_info(TEXT), sms_info(TEXT, smart_encoding=True)
    assert (off.encoding, off.segments) == ("UCS-2", 2)
    assert set(off.ucs2_characters) == {"ó", "á"}
    assert (on.encoding, on.segments) == ("GSM-7", 1)
    assert smart_encode(TEXT).startswith("Hola, ¿como esta? Su espalda esta")  # ¿ is GSM-7


def test_typographic_characters_are_replaced_as_twilio_does_and_the_rest_left_alone() -> None:
    typographic = "\u201cS\u00ed\u201d \u2014 it\u2019s\u2026\u00a0ok"  # curly quotes, dash...
    assert smart_encode(typographic) == '"Si" - it\'s... ok'
    assert smart_encode("Señor José, ¡gracias!") == "Señor José, ¡gracias!"  # GSM-7 already
    # a character with no GSM-7 form keeps the whole text as written (Twilio sends it so)
    assert smart_encode("Está bien 😀") == "Está bien 😀"
    assert sms_info("Está bien 😀", smart_encoding=True).encoding == "UCS-2"


def test_the_composer_sends_and_counts_the_text_as_the_setting_says() -> None:
    for enabled, body, segments in ((False, TEXT, 2), (True, smart_encode(TEXT), 1)):
        settings = load_settings(sms={"smart_encoding": enabled})
        sent = sample_composer(settings).as_sent(RenderedSms(TEXT, sms_info(TEXT)))
        assert (sent.body, sent.info.segments) == (body, segments)


def test_sms_info_agrees_with_the_setting_and_the_option(
    nurture: Callable[..., Any],
) -> None:
    def counted(*args: str, **env: str) -> dict[str, Any]:
        result = nurture("sms-info", *args, TEXT, env=env)
        assert result.returncode == 0, result.stderr
        return dict(json.loads(result.stdout))

    assert counted() == {"encoding": "UCS-2", "segments": 2}
    assert counted(NURTURE_SMS__SMART_ENCODING="true") == {"encoding": "GSM-7", "segments": 1}
    assert counted("--no-smart-encoding", NURTURE_SMS__SMART_ENCODING="true")["segments"] == 2
    assert counted("--smart-encoding") == {"encoding": "GSM-7", "segments": 1}
