"""End-to-end jobs composed from the library layers (what the CLI's bigger subcommands call)."""
