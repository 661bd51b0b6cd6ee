"""``python -m docmail`` is the same as the ``docmail`` command."""

from docmail.cli.main import cli

if __name__ == "__main__":
    cli()
