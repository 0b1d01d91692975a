"""`hwnas` commands of hwnas.export (registered on the main app by hwnas.cli)."""

import typer


def register(app: typer.Typer) -> None:
    """Add this area's commands to the main app."""
