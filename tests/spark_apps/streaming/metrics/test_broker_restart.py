"""The broker SIGKILLed mid-stream and restarted, in its plain configuration (the log on disk):
job A and job B run as processingTime queries while a producer keeps sending, the broker dies
(SIGKILL: no controlled shutdown) and comes back on the same log. Afterwards every event the
producer had acknowledged is counted exactly once in MySQL and in the lake files.

A query that fails during the outage is resubmitted from its checkpoint, as the supervisor
does (the test prints what failed); the expected numbers are the producer's own record.
"""
from __future__ import annotations

import threading
import time

import pytest

from include.producers import metrics as producer
from tests.spark_apps.streaming.metrics.pipeline import Pipeline, assert_results_exact, wait_for

pytestmark = [pytest.mark.spark, pytest.mark.stack, pytest.mark.timeout(900)]


class BackgroundProducer(threading.Thread):
    """One burst (3 hosts x 5 metrics, 10 % broken) every ``interval_s`` until stopped; keeps the
    events and counts the delivery reports (librdkafka retries across the outage)."""

    def __init__(self, pipeline: Pipeline, interval_s: float = 0.5):
        super().__init__(daemon=True)
        self.pipeline, self.interval_s = pipeline, interval_s
        self.events: list[producer.Event] = []
        self.delivered, self.errors = 0, []
        self.stopping = threading.Event()

    def on_delivery(self, err, _message):
        if err is None:
            self.delivered += 1
        else:
            self.errors.append(str(err))

    def run(self):
        kafka = producer.make_producer(self.pipeline.broker.bootstrap, {"message.timeout.ms": 240_000})
        burst = 0
        while not self.stopping.is_set():
            events = self.pipeline.make_events(seed=100 + burst, offsets_s=[burst], invalid_share=0.1)
            for event in events:
                kafka.produce(self.pipeline.source, key=event.key, value=event.value, on_delivery=self.on_delivery)
            self.events += events
            kafka.poll(0)
            burst += 1
            time.sleep(self.interval_s)
        self.unflushed = kafka.flush(240)


def test_broker_sigkilled_mid_stream_loses_and_doubles_nothing(spark, private_kafka_broker, fresh_results_db,
                                                                tmp_path):
    broker = private_kafka_broker
    pipeline = Pipeline(spark, broker, fresh_results_db, tmp_path)
    start = {"A": lambda: pipeline.start_job_a(trigger_seconds=0.5),
             "B": lambda: pipeline.start_job_b(trigger_seconds=0.5)}
    queries = {name: begin() for name, begin in start.items()}
    restarts: list[tuple[str, str]] = []

    def resubmit_failed():  # the supervisor: a failed job's task retries it from its checkpoint
        for name, query in queries.items():
            if not query.isActive:
                restarts.append((name, str(query.exception())[:400]))
                queries[name] = start[name]()

    sender = BackgroundProducer(pipeline)
    try:
        sender.start()
        wait_for(lambda: pipeline.counted_in_mysql() > 0, 240, "the first events in MySQL", tick=resubmit_failed)

        broker.stop(kill=True)  # mid-stream: the producer and both queries are running
        time.sleep(3)
        broker.start()
        time.sleep(5)  # more events after the restart
        sender.stopping.set()
        sender.join(300)
        assert not sender.is_alive() and sender.unflushed == 0 and not sender.errors, sender.errors
        assert sender.delivered == len(sender.events)
        pipeline.events += sender.events

        invalid = sum(1 for e in pipeline.events if e.invalid_kind)

        def settled():
            letters = {(p, o) for t, p, o, _ in pipeline.dead_letter_reasons() if t == pipeline.source}
            return pipeline.counted_in_mysql() >= len(pipeline.valid_events()) and len(letters) >= invalid

        wait_for(settled, 300, "every event through both jobs", interval_s=1, tick=resubmit_failed)
    finally:
        sender.stopping.set()
        pipeline.stop(*queries.values())
    print(f"{len(pipeline.events)} events; queries resubmitted after the broker restart: {restarts or 'none'}")
    assert_results_exact(pipeline, dead_letters_once=False)
