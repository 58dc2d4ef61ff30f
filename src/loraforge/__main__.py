"""`python -m loraforge …`: the same CLI as the `loraforge` command."""

from loraforge.cli import app

app(prog_name="loraforge")
