"""Subcommands of the lora-emotion command line, one module each."""
