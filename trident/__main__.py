"""``python -m trident``: the ``trident`` command."""

from .cli import main

main()
