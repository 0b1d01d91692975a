"""`python -m hwnas.cli`: the `hwnas` command."""

from hwnas.cli import main

main()
