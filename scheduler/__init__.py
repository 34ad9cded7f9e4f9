"""The engine: the APScheduler clock, the planner, the dispatcher, pacing and retries."""
