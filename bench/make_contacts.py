"""Write a realistic contacts CSV for the import benchmark (deterministic for a given seed).

Mixed phone formats, a few dozen email domains, 30% with a time zone, tags, consent columns with
evidence, about 1% bad rows and 2% duplicates of earlier rows.

    python bench/make_contacts.py var/bench/contacts-200k.csv --rows 200000
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

FIRST = [
    "Maria",
    "James",
    "Aiko",
    "Luis",
    "Sofia",
    "David",
    "Grace",
    "Omar",
    "Elena",
    "Noah",
    "Priya",
    "Chen",
    "Fatima",
    "Lucas",
    "Hana",
    "Mateo",
    "Zoe",
    "Ivan",
    "Amara",
    "Leo",
]
LAST = [
    "Lopez",
    "Carter",
    "Tanaka",
    "Garcia",
    "Nguyen",
    "Kim",
    "Patel",
    "Smith",
    "Rossi",
    "Cohen",
    "Okafor",
    "Silva",
    "Muller",
    "Haddad",
    "Johnson",
    "Brown",
    "Davis",
    "Martin",
]
DOMAINS = [
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "icloud.com",
    "hotmail.com",
    "aol.com",
    *(f"clinic{i}.example.org" for i in range(30)),
]
AREA = [213, 310, 323, 424, 562, 626, 714, 747, 818, 909, 949, 415, 212, 305, 312, 602, 702]
ZONES = ["America/Los_Angeles", "America/New_York", "America/Chicago", "America/Denver"]
TAGS = ["website", "event", "booking", "newsletter", "spasm", "consult", "referral"]
HEADER = [
    "first_name",
    "last_name",
    "email",
    "phone",
    "timezone",
    "tags",
    "email_consent",
    "email_consent_evidence",
    "sms_consent",
    "sms_consent_evidence",
    "consent_at",
    "insurance",
]
SMS_EVIDENCE = (
    'Website form checkbox: "I agree to receive marketing texts from Spinal '
    'Decompression LA at this number. Consent is not a condition of purchase."'
)


def phone(rng: random.Random, n: int) -> str:
    area, mid, last = rng.choice(AREA), 200 + n % 800, (n // 800) % 10000
    style = n % 4
    if style == 0:
        return f"({area}) {mid}-{last:04d}"
    if style == 1:
        return f"+1 {area} {mid} {last:04d}"
    if style == 2:
        return f"{area}.{mid}.{last:04d}"
    return f"{area}{mid}{last:04d}"


def row(rng: random.Random, n: int) -> list[str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    email = f"{first.lower()}.{last.lower()}{n}@{rng.choice(DOMAINS)}"
    number = phone(rng, n) if rng.random() < 0.8 else ""
    if rng.random() < 0.01:
        email = email.replace("@", " at ")  # a typo the importer must reject
    sms = number and rng.random() < 0.5
    return [
        first,
        last,
        email,
        number,
        rng.choice(ZONES) if rng.random() < 0.3 else "",
        ";".join(rng.sample(TAGS, rng.randint(0, 3))),
        "yes" if rng.random() < 0.9 else "no",
        'Website form: "Send me back-pain tips by email"',
        "yes" if sms else "no",
        SMS_EVIDENCE if sms else "",
        f"2026-{1 + n % 11:02d}-{1 + n % 28:02d}",
        rng.choice(["", "Blue Shield", "Aetna", "Kaiser", "Medicare"]),
    ]


def write(path: Path, rows: int, seed: int = 7) -> Path:
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    recent: list[list[str]] = []
    with path.open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(HEADER)
        for n in range(rows):
            if recent and rng.random() < 0.02:
                values = list(rng.choice(recent))  # the same person signing up twice
            else:
                values = row(rng, n)
                if len(recent) < 1000:
                    recent.append(values)
                else:
                    recent[n % 1000] = values
            out.writerow(values)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", type=Path)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    write(args.path, args.rows, args.seed)
    print(f"wrote {args.rows:,} rows to {args.path}")


if __name__ == "__main__":
    main()
