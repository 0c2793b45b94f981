"""Subcommand groups of the ``vitalbridge`` command, one module each."""
