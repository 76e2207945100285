"""``python -m voicecdr`` runs the command line."""

from voicecdr.entrypoint import main

main()
