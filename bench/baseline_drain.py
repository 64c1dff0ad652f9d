#!/usr/bin/env python3
"""The pipeline a user could script without sitewatch, as the baseline of
bench/drain: a confluent-kafka consumer loop (consume(num_messages=10000),
the same librdkafka as sitewatch) streaming every value into psql's COPY
into a table of one jsonb column. No typed columns, nothing skipped, no
offsets committed.

    baseline_drain.py TOPIC TABLE    (brokers and psql from the stack's environment)
    baseline_drain.py TOPIC -        (consume only: the broker's fetch rate alone)

Partitions are assign()ed from the beginning, as sitewatch does (a
subscribe() waits about 25 s for its first message on the local broker),
and the loop ends when every partition reached its end. Prints the rows.
"""

import os
import shlex
import subprocess
import sys

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition


def main():
    topic, table = sys.argv[1], sys.argv[2]
    consumer = Consumer({
        "bootstrap.servers": os.environ["SITEWATCH_KAFKA_BROKERS"],
        "group.id": f"bench-baseline-{os.getpid()}",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    })
    partitions = list(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    # CSV with quote and delimiter characters that JSON never contains: the
    # values go in as they are, with no escaping.
    copy = f"COPY {table} (doc) FROM STDIN WITH (FORMAT csv, QUOTE e'\\x01', DELIMITER e'\\x02')"
    psql = None if table == "-" else subprocess.Popen(
        shlex.split(os.environ["STACK_PSQL"]) + ["-d", "sitewatch", "-q", "-c", copy], stdin=subprocess.PIPE)
    ended, rows = set(), 0
    while len(ended) < len(partitions):
        values = []
        for m in consumer.consume(num_messages=10000, timeout=1.0):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    ended.add(m.partition())
                    continue
                sys.exit(f"baseline: {m.error()}")
            values.append(m.value())
        if values and psql:
            psql.stdin.write(b"\n".join(values) + b"\n")
        rows += len(values)
    if psql:
        psql.stdin.close()
    if psql and psql.wait() != 0:
        sys.exit("baseline: psql COPY failed")
    consumer.close()
    print(rows)


if __name__ == "__main__":
    main()
