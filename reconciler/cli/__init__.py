"""Typer command-line adapters over the engine. Each module holds one command group."""
