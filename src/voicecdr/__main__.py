"""``python -m voicecdr`` runs the command line."""

from voicecdr.cli import main

main()
