"""Message templates (Jinja2 files per sequence, shared layouts) and the code that renders them:
the sandboxed renderer, the email stylesheet inlined into HTML templates as they load, the static
audit of what a template reaches, SMS segment counting and signed tracked links."""

from pathlib import Path

TEMPLATES_DIR = Path(__file__).resolve().parent
