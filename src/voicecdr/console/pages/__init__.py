"""The console's pages, one module each, each exporting ``routes(console)``."""
