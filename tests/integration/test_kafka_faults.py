"""Crashes and rebalances mid-stream lose nothing and leave every document at its last
version (real broker, real worker processes killed with SIGKILL)."""

from __future__ import annotations

import random
import signal
import time
from functools import partial

import httpx

from ingest_worker.sources.kafka.client import end_offsets
from tests.fix_kafka import KafkaSetup
from tests.fix_services import wait_until
from tests.integration.event_script import (
    applied_everything,
    final_state,
    indexed_state,
    publish_in_background,
    script,
)
from tests.integration.helpers import stats

KILLS = 6  # each restart waits out the dead member's Kafka session (6 s here)


def wait_for_all_applied(setup: KafkaSetup, timeout: float) -> None:
    wait_until(
        lambda: applied_everything(
            setup.db_url, setup.topic, end_offsets(setup.settings, setup.topic)
        ),
        timeout,
        "every event to be applied",
    )


def assert_index_matches(setup: KafkaSetup, expected: dict[str, tuple[int, str | None]]) -> None:
    indexed = indexed_state(setup.db_url)
    assert indexed.keys() == expected.keys()
    wrong = {d: (indexed[d], expected[d]) for d in expected if indexed[d] != expected[d]}
    assert not wrong, f"{len(wrong)} documents differ, e.g. {list(wrong.items())[:3]}"


def applied(api: httpx.Client) -> int:
    counts = stats(api)
    return int(counts["events_applied_total"] + counts["events_stale_total"])


def progressed(api: httpx.Client, before: int) -> bool:
    return applied(api) > before


def test_kill_9_mid_stream_then_restart_loses_nothing(
    kafka_setup: KafkaSetup, api: httpx.Client
) -> None:
    events = script(documents=200, events=2000, seed=7)
    rng = random.Random(7)
    # One slice of the stream per life of the worker: published as it starts (the model
    # takes ~30 s to load on a busy machine), so every kill lands after progress on that
    # slice, while events of it are still arriving or pending.
    size = -(-len(events) // (KILLS + 1))
    slices = [events[i : i + size] for i in range(0, len(events), size)]
    for kill, part in enumerate(slices[:KILLS]):
        before = applied(api)
        kafka_setup.spawn()
        publish_in_background(kafka_setup.broker.bootstrap, kafka_setup.topic, part, 3).join()
        wait_until(partial(progressed, api, before), 180, f"progress before kill {kill}")
        time.sleep(rng.uniform(0.0, 1.0))
        for process in kafka_setup.running():
            process.send_signal(signal.SIGKILL)
            process.wait()
    kafka_setup.spawn()
    publish_in_background(kafka_setup.broker.bootstrap, kafka_setup.topic, slices[KILLS], 1).join()
    wait_for_all_applied(kafka_setup, 300)
    assert_index_matches(kafka_setup, final_state(events))


def test_workers_leaving_and_joining_a_group_lose_nothing(
    kafka_setup: KafkaSetup, api: httpx.Client
) -> None:
    events = script(documents=200, events=1500, seed=11)
    parts = [events[:500], events[500:1000], events[1000:]]  # one per group membership
    first, second = kafka_setup.spawn(name="first"), kafka_setup.spawn(name="second")
    publish = partial(publish_in_background, kafka_setup.broker.bootstrap, kafka_setup.topic)
    publisher = publish(parts[0], 10)
    wait_until(lambda: applied(api) > 200, 180, "both workers to make progress")
    first.send_signal(signal.SIGTERM)  # leaves the group mid-stream
    assert first.wait(60) == 0, kafka_setup.log_text("first")
    publisher.join()
    before = applied(api)
    publisher = publish(parts[1], 10)
    wait_until(lambda: applied(api) > before + 100, 180, "the second worker to take over")
    third = kafka_setup.spawn(name="third")
    publisher.join()
    publish(parts[2], 10).join()
    wait_for_all_applied(kafka_setup, 300)
    assert_index_matches(kafka_setup, final_state(events))
    for process in (second, third):
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
