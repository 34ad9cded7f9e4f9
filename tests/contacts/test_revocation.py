"""Revocation in any reasonable words, English and Spanish (FCC 2025 rule, 47 CFR
64.1200(a)(10)): real-looking replies, each to its intent and language, tricky ones included."""

from __future__ import annotations

import pytest

from contacts.keywords import Classification, Intent, Language, classify

EN, ES = Language.ENGLISH, Language.SPANISH
STOP, REVOKE, START, HELP, OTHER = (
    Intent.STOP,
    Intent.REVOKE,
    Intent.START,
    Intent.HELP,
    Intent.OTHER,
)

REPLIES: list[tuple[str, Intent, Language]] = [
    # Carrier keywords, whatever the case and punctuation.
    ("STOP", STOP, EN),
    ("stop.", STOP, EN),
    ("Unsubscribe", STOP, EN),
    ("CANCEL", STOP, EN),
    ("End", STOP, EN),
    ("quit!", STOP, EN),
    ("REVOKE", STOP, EN),
    ("Opt out", STOP, EN),
    ("OPT-OUT", STOP, EN),
    ("StopAll", STOP, EN),
    ("Stop stop STOP", STOP, EN),
    # Their Spanish counterparts, with or without accents.
    ("PARAR", STOP, ES),
    ("Alto", STOP, ES),
    ("¡ALTO!", STOP, ES),
    ("cancelar", STOP, ES),
    ("Basta!!", STOP, ES),
    ("No más", STOP, ES),
    ("NO MAS", STOP, ES),
    ("no mas.", STOP, ES),
    ("Baja", STOP, ES),
    # Free text that plainly asks to stop, in English...
    ("I want to opt out", REVOKE, EN),
    ("I revoke consent", REVOKE, EN),
    ("Not interested, stop", REVOKE, EN),
    ("Remove my number", REVOKE, EN),
    ("cancel texts", REVOKE, EN),
    ("Please stop texting me", REVOKE, EN),
    ("stop sending me these messages", REVOKE, EN),
    ("Take me off your list please", REVOKE, EN),
    ("Do not text me again", REVOKE, EN),
    ("I don't want these texts anymore", REVOKE, EN),
    ("I don\u2019t want any more messages", REVOKE, EN),  # a phone's curly apostrophe
    ("No more messages!!", REVOKE, EN),
    ("Wrong number", REVOKE, EN),
    ("Leave me alone", REVOKE, EN),
    ("unsubscribe me please", REVOKE, EN),
    ("Please remove me from your list", REVOKE, EN),
    ("lose my number", REVOKE, EN),
    ("Stop. I never signed up for this", REVOKE, EN),
    ("I already opted out, why are you still texting me?", REVOKE, EN),
    ("Not interested", REVOKE, EN),
    ("I withdraw my consent", REVOKE, EN),
    ("STOP please", REVOKE, EN),
    ("ok stop", REVOKE, EN),
    ("Why do you keep texting me? Stop!", REVOKE, EN),
    # ... and in Spanish.
    ("No más mensajes por favor", REVOKE, ES),
    ("ya no me manden mensajes", REVOKE, ES),
    ("no me escriban más", REVOKE, ES),
    ("quítenme de la lista", REVOKE, ES),
    ("dejen de mandarme mensajes", REVOKE, ES),
    ("Ya no quiero recibir mensajes", REVOKE, ES),
    ("Por favor ya no me envíen nada", REVOKE, ES),
    ("Quiero darme de baja", REVOKE, ES),
    ("Bórrenme de su lista", REVOKE, ES),
    ("Eliminen mi número por favor", REVOKE, ES),
    ("Número equivocado", REVOKE, ES),
    ("No me interesa, gracias", REVOKE, ES),
    ("Revoco mi consentimiento", REVOKE, ES),
    ("¡Ya basta! No me escriban", REVOKE, ES),
    ("Paren de enviarme mensajes", REVOKE, ES),
    ("cancelen los mensajes", REVOKE, ES),
    ("No molesten mas", REVOKE, ES),
    ("Sáquenme de la lista por favor", REVOKE, ES),
    ("Ya no quiero que me manden mensajes", REVOKE, ES),
    ("Alto por favor", REVOKE, ES),
    ("no más, gracias", REVOKE, ES),
    ("Stop, no más mensajes", REVOKE, ES),  # both languages: the one with more of its words
    # Start again and help, in both languages.
    ("START", START, EN),
    ("Unstop", START, EN),
    ("yes", START, EN),
    ("Sí", START, ES),
    ("si", START, ES),
    ("COMENZAR", START, ES),
    ("reanudar", START, ES),
    ("HELP", HELP, EN),
    ("info?", HELP, EN),
    ("AYUDA", HELP, ES),
    ("Ayuda!", HELP, ES),
    ("Información", HELP, ES),
    # Not a revocation: everyday words inside other sentences, ambiguous replies.
    ("not now", OTHER, EN),
    ("stop by tomorrow?", OTHER, EN),
    ("Please stop by the office tomorrow", OTHER, EN),
    ("Can I cancel my appointment?", OTHER, EN),
    ("Can you stop in on Friday?", OTHER, EN),
    ("My back pain won't stop", OTHER, EN),
    ("end the pain", OTHER, EN),
    ("When does the offer end?", OTHER, EN),
    ("Thanks!", OTHER, EN),
    ("Who is this?", OTHER, EN),
    ("Yes please book me for Tuesday", OTHER, EN),
    ("Help me, my back hurts", OTHER, EN),
    ("I need to cancel tomorrow's visit", OTHER, EN),
    ("Not interested in the Tuesday slot, do you have Wednesday?", OTHER, EN),
    ("Is it ok to stop taking ibuprofen before the visit?", OTHER, EN),
    ("No thanks", OTHER, EN),
    ("", OTHER, EN),
    ("   ", OTHER, EN),
    ("no puedo ir mañana", OTHER, ES),
    ("¿Puedo cancelar mi cita?", OTHER, ES),
    ("Alto dolor en la espalda", OTHER, ES),
    ("¿Para cuándo tienen cita?", OTHER, ES),
    ("No me mandaron la dirección", OTHER, ES),
    ("Gracias, nos vemos el martes", OTHER, ES),
    ("Quiero más información sobre el tratamiento", OTHER, ES),
    ("Mi dolor no para", OTHER, ES),
    ("No gracias, ahora no", OTHER, ES),
    ("Sí, me interesa", OTHER, ES),
    ("Hola, ¿cuánto cuesta la consulta?", OTHER, ES),
]


def test_the_table_is_large_and_covers_both_languages() -> None:
    assert len(REPLIES) >= 60
    assert len({text for text, _, _ in REPLIES}) == len(REPLIES)
    for language in (EN, ES):
        for intent in Intent:
            assert any(i == intent and lang == language for _, i, lang in REPLIES), (
                intent,
                language,
            )


@pytest.mark.parametrize(("text", "intent", "language"), REPLIES)
def test_each_reply_to_its_intent_and_language(
    text: str, intent: Intent, language: Language
) -> None:
    assert classify(text) == Classification(intent, language)


@pytest.mark.parametrize(
    ("text", "opt_out_type", "expected"),
    [
        ("arrêt", "STOP", Classification(STOP, EN)),
        ("PARAR", "STOP", Classification(STOP, ES)),
        ("ya no me manden mensajes", "STOP", Classification(STOP, ES)),
        ("STOP", "START", Classification(START, EN)),  # Twilio's own classification wins
        ("ayuda", "HELP", Classification(HELP, ES)),
        ("STOP", " stop ", Classification(STOP, EN)),
        ("Sí", "", Classification(START, ES)),  # a blank OptOutType is no classification
    ],
)
def test_twilio_opt_out_type_wins_and_the_language_is_the_message_s(
    text: str, opt_out_type: str, expected: Classification
) -> None:
    assert classify(text, opt_out_type) == expected
