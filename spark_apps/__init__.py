"""Spark applications of the data platform.

Everything under this package is shipped to the Spark driver and executors as one
zip (``make bundle`` -> ``build/spark_apps.zip``) passed with ``--py-files``, the
same way locally and on EMR. Entry points are the ``*/job_*.py`` / ``main()`` modules
named in ``include/platform/spark_jobs.py``.
"""
