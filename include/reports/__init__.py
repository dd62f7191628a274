"""The Reports page of the Airflow UI (plugins/reports_plugin.py): what it reads and how it draws it.

Plain functions only, so each is unit-tested on hand-made rows and files:

* :mod:`.cards` turns rows (MySQL results, lake progress files) into what one card shows;
* :mod:`.results_db` holds the page's SQL over a DB-API connection (the ``mysql_results`` connection);
* :mod:`.lake` lists and reads small lake files (``file://``, ``s3://``/``s3a://``);
* :mod:`.svg` draws the charts; :mod:`.page` renders the HTML;
* :mod:`.energy` names where the NRT energy analysis writes, for the page and that analysis alike.
"""
