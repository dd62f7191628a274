"""Code shared by every Spark application: session, lake paths, MySQL sink."""
