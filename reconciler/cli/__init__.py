"""Typer command-line adapters over the engine. Each module holds one command group.

A command module imports at the top only what its signatures need (typer, rich, the
output helpers, cheap enums); what a command runs with (the database layer, HTTP, the
engine, the desired-state models) is imported inside the command. So `setpoint --help`,
any command's `--help` and `validate` start without loading what they do not use;
tests/cli/test_startup.py keeps it so.
"""
