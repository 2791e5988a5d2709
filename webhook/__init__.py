"""KPN Things webhook service."""
