"""Airflow plugin: the **Reports** page inside the Airflow UI (README, "Reports page").

Two parts of Airflow 3's plugin interface:

* ``fastapi_apps``: the page's FastAPI app (include/reports/app.py), mounted by the api-server
  under ``/reports``; its routes require a logged-in Airflow user (see that module);
* ``external_views``: a "Reports" entry in the navigation that shows ``reports/`` (relative, so
  it follows the UI's base URL) framed inside the UI at ``plugin/reports``.
"""
from __future__ import annotations

from functools import cached_property

from airflow.plugins_manager import AirflowPlugin


class ReportsPlugin(AirflowPlugin):
    name = "dataplatform_reports"
    external_views = [
        {
            "name": "Reports",
            "href": "reports/",
            "url_route": "reports",
            "destination": "nav",
            "nav_top_level": True,
        }
    ]

    @cached_property
    def fastapi_apps(self) -> list[dict]:
        # Every process that loads plugins imports this file (a task runner does, for macros), but
        # only the api-server asks for the app: building it on first use keeps FastAPI routes and
        # Airflow's API security module out of the others.
        from include.reports.app import URL_PREFIX, create_app

        return [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Reports"}]
