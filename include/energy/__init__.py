"""The NRT energy x weather pipeline's job definitions and Assets (issue 16)."""
