"""Core of the digital-health evidence knowledge base: settings, records, registry, services and the CLI."""
