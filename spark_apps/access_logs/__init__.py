"""Web-server access-log analysis (Apache / Nginx Common and Combined Log Format) on Spark RDDs."""
