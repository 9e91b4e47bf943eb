"""The Typer application every command module registers on."""

import typer

app = typer.Typer(
    name="sonic",
    help="SONIC: which representation of a track makes the best music recommender?",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
