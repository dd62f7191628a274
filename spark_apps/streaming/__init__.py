"""Structured Streaming building blocks shared by the streaming pipelines."""
