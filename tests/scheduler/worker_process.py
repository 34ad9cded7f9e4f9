"""A real dispatch loop in its own process, for the kill -9 test (not a test module).

    python worker_process.py ISO_NOW

Settings come from NURTURE_* variables; the business clock is frozen at ISO_NOW so the test
does not depend on the hour CI runs at (the rate buckets use real time either way).
"""

from __future__ import annotations

import sys
from datetime import datetime

from core.clock import FrozenClock
from core.settings import load_settings
from nurture.app import NurtureApp


def main() -> None:
    app = NurtureApp(
        settings=load_settings(), clock=FrozenClock(datetime.fromisoformat(sys.argv[1]))
    )
    print(f"worker {app.dispatcher.worker} ready", flush=True)
    while True:
        app.dispatcher.tick()


if __name__ == "__main__":
    main()
