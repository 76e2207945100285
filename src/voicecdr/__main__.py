"""``python -m voicecdr`` runs the command line."""

from voicecdr.entrypoint import main

# Guarded: worker processes started with "spawn" (parallel imports) import this module
# again, and must not run the command line a second time.
if __name__ == "__main__":
    main()
