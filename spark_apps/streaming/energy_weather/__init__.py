"""Energy x weather: household smart-meter readings joined in the stream with the weather of their region (issue 16)."""
