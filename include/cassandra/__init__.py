"""Cassandra / Amazon Keyspaces schema of the platform (created by ``platform_bootstrap``)."""
