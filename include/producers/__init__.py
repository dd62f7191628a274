"""Event producers that feed the streaming pipelines (simulators and load generators)."""
