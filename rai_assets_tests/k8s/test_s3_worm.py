"""INF-3: the production bucket on a real S3 endpoint (moto server): Object Lock (WORM) for snapshots and
signed reports, lifecycle rules for tmp/ and the landing zone, public access blocked. Fast; default run."""

from __future__ import annotations

import uuid

import pytest
from botocore.exceptions import ClientError
from dagster_aws.s3 import S3Resource

from rai_assets.adapters.object_store import ObjectExistsError, ObjectStoreResource
from rai_assets.deployment import LANDING_EXPIRE_DAYS, TMP_EXPIRE_DAYS, provision_bucket


@pytest.fixture
def bucket(s3_endpoint: str):
    # the project's S3 client: dagster-aws's S3Resource, as ObjectStoreResource uses it
    client = S3Resource(endpoint_url=s3_endpoint, region_name="us-east-1").get_client()
    name = f"rai-prod-{uuid.uuid4().hex[:8]}"
    provision_bucket(client, name, ["village-a", "village-b"])
    provision_bucket(client, name, ["village-a", "village-b"])  # idempotent
    return client, name


def test_bucket_has_object_lock_lifecycle_and_no_public_access(bucket):
    """INF-3: object lock enabled, tmp/ expires after 24 h, each landing zone after its retention."""
    client, name = bucket
    lock = client.get_object_lock_configuration(Bucket=name)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert client.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    rules = {r["ID"]: r for r in client.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]}
    assert rules["tmp"]["Filter"]["Prefix"] == "tmp/" and rules["tmp"]["Expiration"]["Days"] == TMP_EXPIRE_DAYS
    assert rules["landing-village-a"]["Filter"]["Prefix"] == "tenants/village-a/landing/"
    assert rules["landing-village-b"]["Expiration"]["Days"] == LANDING_EXPIRE_DAYS
    block = client.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    assert all(block.values())


def test_locked_snapshot_cannot_be_overwritten_or_deleted(bucket, s3_endpoint):
    """SNAP-2 / INF-3: a write-once object gets COMPLIANCE retention; an overwrite through the store is refused,
    and deleting the locked version on S3 itself is refused."""
    client, name = bucket
    store = ObjectStoreResource(s3_bucket=name, s3=S3Resource(endpoint_url=s3_endpoint), s3_object_lock_days=1)
    key = "tenants/village-a/snapshots/s02/manifest.json"
    store.put_bytes(key, b'{"root": "abc"}', write_once=True)
    head = client.head_object(Bucket=name, Key=key)
    assert head["ObjectLockMode"] == "COMPLIANCE" and head["ObjectLockRetainUntilDate"]
    with pytest.raises(ObjectExistsError):
        store.put_bytes(key, b'{"root": "forged"}', write_once=True)
    assert store.get_bytes(key) == b'{"root": "abc"}'
    with pytest.raises(ClientError) as refused:
        client.delete_object(Bucket=name, Key=key, VersionId=head["VersionId"])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert client.get_object(Bucket=name, Key=key, VersionId=head["VersionId"])["Body"].read() == b'{"root": "abc"}'
