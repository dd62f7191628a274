"""Cassandra / Amazon Keyspaces schema of the platform (created by ``platform_bootstrap``), and
the options that tell a job where it is."""
from __future__ import annotations


def job_arguments(settings) -> list[str]:
    """The options telling a job where Cassandra / Keyspaces is and how to reach it, from the
    platform settings (:class:`include.platform.settings.Settings`); never the credentials."""
    from spark_apps.common.cassandra import location_arguments

    return location_arguments(settings.cassandra_contact_points, settings.cassandra_port, settings.cassandra_local_dc,
                              settings.cassandra_ssl, settings.cassandra_ssl_ca_file, settings.cassandra_protocol_version,
                              settings.cassandra_secret_id)
