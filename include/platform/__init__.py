"""The platform's own plumbing: settings, job definitions, the embedded stack, the CLI."""
