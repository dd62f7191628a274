"""Server-metrics streaming pipeline: JSON -> validated Protobuf topic -> lake CSV + MySQL aggregates.

* :mod:`.json_to_protobuf` (job A): metric-message (JSON) -> metric-protobuf, bad events
  to metric-dead-letter;
* :mod:`.protobuf_to_lake_and_mysql` (job B): metric-protobuf -> CSV per metric in the
  lake, per-minute aggregates added into MySQL once per micro-batch;
* :mod:`.aggregate_csv`: batch totals per server from the lake CSV files.

``metric_pb2`` is generated from ``metric.proto`` by ``python -m include.platform.build``.
"""
