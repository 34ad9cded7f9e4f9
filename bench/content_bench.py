"""How fast content is made and checked: exact SMS segment counting (what `nurture sms-info
--ndjson` does per line), whole-sequence validation (what every launch pays) and composing one
message (what the dispatcher pays per email and per text: context, signed links, render).

Each figure is printed beside a baseline measured in the same run:
- sms_info against a naive count (len / 153 with no encoding detection: wrong, but the floor);
- validating spasm-relief against rendering its steps once for one contact (no checks);
- composing a message against building its context alone (its three signed links, which any
  render needs), for one first name shared by every contact and for many distinct ones.
Per-message figures are CPU time of this process (the best of several rounds), so that other
processes on the machine move them less.

    python bench/content_bench.py            # ~20 s
    python bench/content_bench.py --texts 1000000 --rounds 20
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Callable

from campaigns.compose import Composer
from campaigns.definitions import Sequence, Step, load_sequence
from campaigns.validation import SAMPLE_ID, sample_composer, validate_sequence
from core.settings import Settings, load_settings
from templates.sms_segments import sms_info

ALPHABETS = (
    "abcdefghij KLMNOP.,!?",  # plain GSM-7
    "abc €[]{}~^|\\",  # GSM-7 with escape pairs
    "abcdé àñ ü 😀\u2019\u2014",  # UCS-2 with surrogate pairs
    "áéíóú ç ł ő 你好",  # UCS-2, BMP only
)


def sample_texts(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        alphabet = rng.choice(ALPHABETS)
        texts.append("".join(rng.choices(alphabet, k=rng.randint(20, 400))))
    return texts


def naive(text: str) -> int:
    return 1 if len(text) <= 160 else math.ceil(len(text) / 153)


def rate(function: Callable[[str], object], texts: list[str]) -> float:
    started = time.perf_counter()
    for text in texts:
        function(text)
    return len(texts) / (time.perf_counter() - started)


def timed(function: Callable[[], object], rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        function()
    return (time.perf_counter() - started) / rounds * 1000


def per_message(function: Callable[[int], object], count: int, rounds: int = 5) -> float:
    """µs of this process's CPU time per call, the best of `rounds`."""
    best = math.inf
    for round_ in range(rounds):
        started = time.process_time()
        for index in range(count):
            function(round_ * count + index + 1)
        best = min(best, time.process_time() - started)
    return best / count * 1e6


def step_figures(
    composer: Composer, sequence: Sequence, step: Step, names: int, count: int
) -> tuple[float, float]:
    """µs to compose one message of `step`, and to build its context alone."""
    contacts = [
        {"first_name": f"Name{index}", "last_name": "L", "custom_fields": {}}
        for index in range(names)
    ]

    def compose(message: int) -> object:
        return composer.compose(
            sequence,
            step,
            contacts[message % names],
            message_id=message,
            contact_id=message,
            to="pat@example.com",
            campaign="bench",
        )

    def context(message: int) -> object:
        return composer.context(sequence, step, contacts[message % names], message, message)

    return per_message(compose, count), per_message(context, count)


def compose_figures(settings: Settings, sequence: Sequence, count: int) -> None:
    composer = sample_composer(settings)
    email = next(step for step in sequence.steps if step.channel == "email")
    text = next(step for step in sequence.steps if step.channel == "sms")
    print(f"Composing one message of spasm-relief, best of 5 rounds of {count:,} (CPU µs):")
    for label, names in (("one first name", 1), ("5,000 first names", 5000)):
        for step in (email, text):
            made, floor = step_figures(composer, sequence, step, names, count)
            print(
                f"  {step.channel:5} {label:17} compose {made:7.1f} µs"
                f"   baseline: context alone {floor:6.1f} µs   ({made / floor:.1f}x)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=2000, help="per round, when composing")
    args = parser.parse_args()

    texts = sample_texts(args.texts)
    characters = sum(map(len, texts))
    exact, floor = rate(sms_info, texts), rate(naive, texts)
    print(f"SMS segments, {args.texts} texts ({characters / args.texts:.0f} chars on average):")
    print(f"  sms_info (exact)      {exact:12,.0f} texts/s")
    print(f"  baseline: len/153     {floor:12,.0f} texts/s   (ratio {floor / exact:.1f}x)")

    settings = load_settings()
    sequence = load_sequence("spasm-relief")
    composer = sample_composer(settings)
    contact = {"first_name": "Maria", "last_name": "Lopez"}

    def render_once() -> None:
        for step in sequence.steps:
            composer.render(sequence, step, contact, SAMPLE_ID, SAMPLE_ID)

    full = timed(lambda: validate_sequence(sequence, settings), args.rounds)
    render = timed(render_once, args.rounds * 4)
    print(f"Validation of spasm-relief ({len(sequence.steps)} steps), mean of {args.rounds}:")
    print(f"  validate_sequence     {full:9.1f} ms  (fresh renderer: templates recompiled)")
    print(f"  baseline: render once {render:9.1f} ms  (cached templates, one contact)")
    compose_figures(settings, sequence, args.messages)


if __name__ == "__main__":
    main()
