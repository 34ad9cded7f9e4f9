"""The `nurture` command line: one module per area, wired together in main.py."""
