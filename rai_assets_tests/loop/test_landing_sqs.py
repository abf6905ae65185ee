"""The landing sensor on S3 event notifications (S3 → SQS), with listing as the fallback (issue 12, goal 1).

On the moto server of the tests: the bucket's notification configuration sends ``s3:ObjectCreated:*`` of
``*.manifest.json`` to an SQS queue, and moto delivers them on ``put_object`` (the messages checked here are
moto's own, not hand-written). A tick between listings requests runs from the notifications alone (listing is
made to fail), deletes the messages, uses the listing's ``run_key``; the listing fallback catches a lost
notification and never requests a notified file twice.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import boto3
import pytest
from dagster import DagsterInstance

from rai_assets.adapters.object_store import ObjectStoreResource
from rai_assets.loop import landing_sensor as landing_module
from rai_assets.loop.landing_sensor import landing_zone_sensor, parse_cursor
from rai_assets_tests.loop.scale import land_manifests, register_tenants, tenant_ids
from rai_assets_tests.sensor_ticks import evaluate_sensor

PREFIX = "env1"  # the store's s3_prefix: notification keys carry it, the sensor's keys do not


@pytest.fixture
def notified_store(s3_endpoint: str) -> tuple[ObjectStoreResource, Any, str]:
    """A bucket whose manifest uploads are notified to a fresh SQS queue; (store, SQS client, queue URL)."""
    name = f"landing-{uuid.uuid4().hex[:8]}"
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=s3_endpoint, region_name="us-east-1")
    s3.create_bucket(Bucket=name)
    queue = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration={"QueueConfigurations": [{
        "QueueArn": arn, "Events": ["s3:ObjectCreated:*"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": f"{PREFIX}/tenants/"},
                                           {"Name": "suffix", "Value": ".manifest.json"}]}}}]})
    store = ObjectStoreResource(s3_bucket=name, s3_endpoint_url=s3_endpoint, s3_prefix=PREFIX, sqs_queue_url=queue)
    return store, sqs, queue


def _queued(sqs: Any, queue: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages",
                                                                      "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attrs["Attributes"].values())


def test_landing_sensor_requests_runs_from_s3_event_notifications(resources, notified_store, monkeypatch):
    """Upload → moto's S3 notification → SQS → sensor tick → run request, with no listing; messages deleted;
    the listing fallback catches a lost notification and does not request a notified file again."""
    store, sqs, queue = notified_store
    resources = {**resources, "object_store": store}
    instance = DagsterInstance.ephemeral()
    tenants = tenant_ids(4, prefix=f"q{uuid.uuid4().hex[:4]}")
    register_tenants(resources["ledger"], tenants, ["s01"])

    boot = evaluate_sensor(landing_zone_sensor, instance=instance, resources=resources)  # never listed: lists
    assert "via listing (the fallback every 300 s)" in boot.skip_reason.skip_message
    assert json.loads(boot.cursor)["l"] == pytest.approx(time.time(), abs=60)

    keys = land_manifests(store, [(t, "s01") for t in tenants[:3]])
    assert _queued(sqs, queue) >= 3, "moto delivers the bucket's ObjectCreated notifications to the queue"
    monkeypatch.setattr(ObjectStoreResource, "list_keys_modified",
                        lambda *a, **k: pytest.fail("a tick between listings must not list the bucket"))
    tick = evaluate_sensor(landing_zone_sensor, instance=instance, resources=resources, cursor=boot.cursor)
    assert sorted(r.partition_key for r in tick.run_requests) == sorted(f"s01|{t}" for t in tenants[:3])
    assert _queued(sqs, queue) == 0, "handled notifications (and moto's s3:TestEvent) are deleted"
    quiet = evaluate_sensor(landing_zone_sensor, instance=instance, resources=resources, cursor=tick.cursor)
    assert quiet.run_requests == [] and "S3 event notifications (0 messages)" in quiet.skip_reason.skip_message
    monkeypatch.undo()

    # the same run_key as the listing path: a file never triggers twice, whichever path saw it
    listing_store = ObjectStoreResource(s3_bucket=store.s3_bucket, s3_endpoint_url=store.s3_endpoint_url,
                                        s3_prefix=PREFIX)
    listed = evaluate_sensor(landing_zone_sensor, instance=DagsterInstance.ephemeral(),
                             resources={**resources, "object_store": listing_store})
    assert {r.run_key for r in listed.run_requests} == {r.run_key for r in tick.run_requests}

    # a lost notification: the message never reaches the sensor; the listing fallback catches it
    lost = land_manifests(store, [(tenants[3], "s01")])
    for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    missed = evaluate_sensor(landing_zone_sensor, instance=instance, resources=resources, cursor=quiet.cursor)
    assert missed.run_requests == []
    monkeypatch.setattr(landing_module, "LISTING_FALLBACK_S", 0.0)  # the fallback's time has come
    fallback = evaluate_sensor(landing_zone_sensor, instance=instance, resources=resources, cursor=missed.cursor)
    assert [r.partition_key for r in fallback.run_requests] == [f"s01|{tenants[3]}"]
    assert fallback.run_requests[0].tags["rai/landed-files"] == "1" and len(lost) == 1
    assert len(parse_cursor(fallback.cursor)[1]) == len(keys) + 1  # inside the grace window: remembered


def test_notifications_of_other_buckets_events_and_shapes_yield_no_keys(resources, notified_store):
    """S3's own event shapes sent to the queue by hand: an SNS-wrapped ObjectCreated record (URL-encoded key)
    is read; another bucket's record, a delete, a test event and a non-JSON body are deleted without a run."""
    store, sqs, queue = notified_store
    tenant = f"w{uuid.uuid4().hex[:6]}"
    register_tenants(resources["ledger"], [tenant], ["s02"])
    resources = {**resources, "object_store": store}

    def record(bucket: str, key: str, event: str = "ObjectCreated:Put") -> dict[str, Any]:
        return {"eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                "eventTime": "2026-01-02T03:04:05.000Z", "eventName": event,
                "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                       "object": {"key": key, "size": 2}}}

    key = f"tenants/{tenant}/landing/s02/batch.manifest.json"
    sqs.purge_queue(QueueUrl=queue)  # moto's s3:TestEvent
    bodies = [
        json.dumps({"Type": "Notification", "Message": json.dumps(
            {"Records": [record(store.s3_bucket, f"{PREFIX}%2F{key.replace('/', '%2F')}")]})}),
        json.dumps({"Records": [record("another-bucket", f"{PREFIX}/{key}")]}),
        json.dumps({"Records": [record(store.s3_bucket, f"{PREFIX}/{key}", "ObjectRemoved:Delete")]}),
        json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": store.s3_bucket}),
        "not json",
    ]
    for body in bodies:
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    received, handles = store.receive_created_keys()
    assert received == [(key, 1767323045.0)] and len(handles) == len(bodies)
    store.delete_messages(handles)
    for body in bodies[:1]:
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    recent = json.dumps({"w": 0.0, "seen": [], "wait": [], "l": time.time()})
    tick = evaluate_sensor(landing_zone_sensor, instance=DagsterInstance.ephemeral(), resources=resources,
                           cursor=recent)
    assert [r.partition_key for r in tick.run_requests] == [f"s02|{tenant}"]
    assert _queued(sqs, queue) == 0
