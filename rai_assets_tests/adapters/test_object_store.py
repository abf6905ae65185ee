"""Tests for the object store adapter, against the real local filesystem and a real moto S3 server.

Behaviour tests run once per mode: ``local`` (files under tmp_path), ``s3`` (fresh bucket on the
moto server over loopback, endpoint via the ``s3_endpoint_url`` shorthand) and ``s3-prefixed`` (same,
with ``s3_prefix`` set and the client from an explicit dagster-aws ``S3Resource``). Nothing is mocked.
"""

from __future__ import annotations

import functools
import hashlib
import stat
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from dagster import EnvVar, asset, materialize
from dagster_aws.s3 import S3Resource

from rai_assets.adapters.object_store import (
    InvalidObjectKeyError,
    ObjectExistsError,
    ObjectNotFoundError,
    ObjectStoreError,
    ObjectStoreResource,
    tenant_key,
    tenant_prefix,
    validate_key,
)

pytest_plugins = ["rai_assets_tests.s3_server"]

MODES = ["local", "s3", "s3-prefixed"]
INVALID_KEYS = [
    "../x",
    "a//b",
    "/abs",
    "a\\b",
    "a|b",
    "tenants/../other",
    "",
    ".",
    "a/./b",
    "a/",
    "a b",
    "ключ",
    "a/" + "x" * 256,
]


@functools.cache
def _s3_client(endpoint: str):
    """A plain boto3 client for test setup/inspection (cached: client creation is slow)."""
    return boto3.session.Session().client("s3", endpoint_url=endpoint)


def _new_bucket(endpoint: str, *, object_lock: bool = False) -> str:
    name = f"test-{uuid.uuid4().hex[:20]}"
    _s3_client(endpoint).create_bucket(Bucket=name, ObjectLockEnabledForBucket=object_lock)
    return name


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def store(mode: str, tmp_path: Path, request: pytest.FixtureRequest) -> ObjectStoreResource:
    if mode == "local":
        return ObjectStoreResource(local_root=str(tmp_path / "objects"))
    endpoint: str = request.getfixturevalue("s3_endpoint")
    if mode == "s3-prefixed":  # INF-3: the client of dagster-aws's S3Resource, configured explicitly
        return ObjectStoreResource(s3_bucket=_new_bucket(endpoint), s3=S3Resource(endpoint_url=endpoint),
                                   s3_prefix="env/dev")
    return ObjectStoreResource(s3_bucket=_new_bucket(endpoint), s3_endpoint_url=endpoint)


# ---------------------------------------------------------------- behaviour in every mode


def test_put_get_roundtrip_returns_sha256(store: ObjectStoreResource) -> None:
    data = b"\x00snapshot bytes\xff" * 100
    sha = store.put_bytes("tenants/t1/snap/part=1.parquet", data)
    assert sha == hashlib.sha256(data).hexdigest()
    assert store.get_bytes("tenants/t1/snap/part=1.parquet") == data
    assert store.put_bytes("empty", b"") == hashlib.sha256(b"").hexdigest()
    assert store.get_bytes("empty") == b""


def test_plain_put_overwrites(store: ObjectStoreResource) -> None:
    store.put_bytes("manifest.json", b"v1")
    store.put_bytes("manifest.json", b"v2")
    assert store.get_bytes("manifest.json") == b"v2"


def test_write_once_is_idempotent_for_identical_bytes(store: ObjectStoreResource) -> None:
    first = store.put_bytes("snap/a.bin", b"same", write_once=True)
    second = store.put_bytes("snap/a.bin", b"same", write_once=True)
    assert first == second
    assert store.get_bytes("snap/a.bin") == b"same"


def test_write_once_conflict_raises_and_keeps_original(store: ObjectStoreResource) -> None:
    store.put_bytes("snap/a.bin", b"original", write_once=True)
    with pytest.raises(ObjectExistsError, match=r"snap/a\.bin") as info:
        store.put_bytes("snap/a.bin", b"tampered", write_once=True)
    assert isinstance(info.value, RuntimeError)
    assert isinstance(info.value, ObjectStoreError)
    assert store.get_bytes("snap/a.bin") == b"original"


def test_write_once_over_plain_object_compares_content(store: ObjectStoreResource) -> None:
    store.put_bytes("x", b"one")
    store.put_bytes("x", b"one", write_once=True)  # same bytes: fine
    with pytest.raises(ObjectExistsError):
        store.put_bytes("x", b"two", write_once=True)
    assert store.get_bytes("x") == b"one"


def test_exists(store: ObjectStoreResource) -> None:
    assert store.exists("models/m1/model.json") is False
    store.put_bytes("models/m1/model.json", b"{}")
    assert store.exists("models/m1/model.json") is True
    assert store.exists("models/m1") is False  # a "directory" is not an object
    assert store.exists("models/m1/model.jso") is False


def test_get_missing_raises_not_found(store: ObjectStoreResource) -> None:
    with pytest.raises(ObjectNotFoundError, match=r"tenants/t1/missing\.bin") as info:
        store.get_bytes("tenants/t1/missing.bin")
    assert isinstance(info.value, LookupError)
    store.put_bytes("tenants/t1/present.bin", b"x")
    with pytest.raises(ObjectNotFoundError):
        store.get_bytes("tenants/t1")  # prefix of an object, not an object


def test_list_keys_prefix_sorted_and_paginated(store: ObjectStoreResource) -> None:
    wanted = [tenant_key("t1", "runs", f"r{i:02d}.json") for i in range(20)]
    for key in reversed(wanted):
        store.put_bytes(key, key.encode())
    store.put_bytes(tenant_key("t1", "other.json"), b"o")
    store.put_bytes(tenant_key("t10", "runs", "r00.json"), b"x")
    store.put_bytes("top.json", b"t")

    # page_size 7 < 20 keys: only a working paginator returns them all
    assert store.list_keys(tenant_prefix("t1") + "runs/", page_size=7) == wanted
    assert store.list_keys("tenants/t1/runs/r1", page_size=3) == wanted[10:20]
    assert store.list_keys(tenant_prefix("t1")) == sorted([*wanted, "tenants/t1/other.json"])
    # plain string prefix (S3 semantics): "tenants/t1" also matches t10 — hence tenant_prefix
    assert "tenants/t10/runs/r00.json" in store.list_keys("tenants/t1")
    assert "tenants/t10/runs/r00.json" not in store.list_keys(tenant_prefix("t1"))
    everything = store.list_keys("")
    assert everything == sorted(everything)
    assert len(everything) == 23
    assert "top.json" in everything
    assert store.list_keys("nothing/here/") == []


def test_list_keys_rejects_bad_page_size(store: ObjectStoreResource) -> None:
    with pytest.raises(ValueError, match="page_size"):
        store.list_keys("", page_size=0)


@pytest.mark.parametrize("bad", INVALID_KEYS)
def test_invalid_keys_rejected(store: ObjectStoreResource, bad: str) -> None:
    with pytest.raises(InvalidObjectKeyError):
        store.put_bytes(bad, b"x")
    with pytest.raises(InvalidObjectKeyError):
        store.put_bytes(bad, b"x", write_once=True)
    with pytest.raises(InvalidObjectKeyError):
        store.get_bytes(bad)
    with pytest.raises(InvalidObjectKeyError):
        store.exists(bad)
    with pytest.raises(InvalidObjectKeyError):
        store.uri(bad)
    with pytest.raises(InvalidObjectKeyError):
        store.local_path(bad)


def test_uri_and_local_path(store: ObjectStoreResource, mode: str, tmp_path: Path) -> None:
    key = "tenants/t1/model=v1/a.bin"
    if mode == "local":
        expected = tmp_path / "objects" / "tenants" / "t1" / "model=v1" / "a.bin"
        assert store.uri(key) == expected.resolve().as_uri()
        assert store.uri(key).startswith("file:///")
        assert store.local_path(key) == expected.resolve()
        store.put_bytes(key, b"x")
        assert expected.read_bytes() == b"x"
    else:
        prefix = "env/dev/" if mode == "s3-prefixed" else ""
        assert store.uri(key) == f"s3://{store.s3_bucket}/{prefix}{key}"
        assert store.local_path(key) is None


# ---------------------------------------------------------------- no I/O before validation


@pytest.mark.parametrize("io_mode", ["local", "s3"])
def test_invalid_keys_rejected_before_any_io(io_mode: str, tmp_path: Path) -> None:
    """An unreachable endpoint / absent root proves validation happens before touching storage."""
    root = tmp_path / "never-created"
    if io_mode == "local":
        store = ObjectStoreResource(local_root=str(root))
    else:  # port 9 (discard) on loopback: any request would fail with a connection error
        store = ObjectStoreResource(s3_bucket="no-such-bucket", s3_endpoint_url="http://127.0.0.1:9")
    for bad in INVALID_KEYS:
        for call in (
            lambda k: store.put_bytes(k, b"x", write_once=True),
            store.get_bytes,
            store.exists,
        ):
            with pytest.raises(InvalidObjectKeyError, match="invalid object key"):
                call(bad)
    for bad_prefix in ("../", "/abs", "a//", "a\\", "a|", "tenants/../x/"):
        with pytest.raises(InvalidObjectKeyError, match="invalid object prefix"):
            store.list_keys(bad_prefix)
    assert not root.exists()


# ---------------------------------------------------------------- key helpers


def test_validate_key_messages_name_the_key() -> None:
    with pytest.raises(InvalidObjectKeyError, match=r"'tenants/\.\./other'.*'\.\.'"):
        validate_key("tenants/../other")
    with pytest.raises(ValueError, match=r"'a\|b'"):
        validate_key("a|b")
    assert validate_key("tenants/t-1/a_b.C=9") == "tenants/t-1/a_b.C=9"


def test_tenant_key() -> None:
    assert tenant_key("t1", "snapshots", "2024/x.parquet") == "tenants/t1/snapshots/2024/x.parquet"
    assert tenant_key("t1") == "tenants/t1"
    assert tenant_prefix("t1") == "tenants/t1/"
    for bad in ("", ".", "..", "a/b", "../t2", "t1/../t2", "a\\b", "a b", "t1|x"):
        with pytest.raises(InvalidObjectKeyError, match="tenant id"):
            tenant_key(bad, "x")
        with pytest.raises(InvalidObjectKeyError):
            tenant_prefix(bad)
    with pytest.raises(InvalidObjectKeyError):
        tenant_key("t1", "..", "t2", "x")
    with pytest.raises(InvalidObjectKeyError):
        tenant_key("t1", "")


# ---------------------------------------------------------------- local mode specifics


def test_local_write_once_file_is_read_only(tmp_path: Path) -> None:
    store = ObjectStoreResource(local_root=str(tmp_path))
    store.put_bytes("snap/ro.bin", b"frozen", write_once=True)
    store.put_bytes("snap/rw.bin", b"mutable")
    ro_path, rw_path = store.local_path("snap/ro.bin"), store.local_path("snap/rw.bin")
    assert ro_path is not None and rw_path is not None
    assert stat.S_IMODE(ro_path.stat().st_mode) == 0o444
    assert stat.S_IMODE(rw_path.stat().st_mode) == 0o644
    # no temp files left behind
    assert sorted(p.name for p in ro_path.parent.iterdir()) == ["ro.bin", "rw.bin"]


def test_local_concurrent_write_once_has_single_winner(tmp_path: Path) -> None:
    store = ObjectStoreResource(local_root=str(tmp_path))
    results: dict[int, str] = {}
    barrier = threading.Barrier(8)

    def writer(i: int) -> None:
        barrier.wait()
        try:
            store.put_bytes("race.bin", f"writer-{i}".encode(), write_once=True)
            results[i] = "ok"
        except ObjectExistsError:
            results[i] = "conflict"

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [i for i, r in results.items() if r == "ok"]
    assert len(winners) == 1
    assert store.get_bytes("race.bin") == f"writer-{winners[0]}".encode()


def test_local_list_ignores_temp_and_foreign_files(tmp_path: Path) -> None:
    store = ObjectStoreResource(local_root=str(tmp_path))
    store.put_bytes("a/b.bin", b"x")
    (tmp_path / "a" / ".b.bin.abc~tmp").write_bytes(b"in flight")
    (tmp_path / "a" / "bad name").write_bytes(b"not a valid key")
    assert store.list_keys("") == ["a/b.bin"]
    assert store.list_keys("a/") == ["a/b.bin"]


def test_local_path_clash_raises_object_exists(tmp_path: Path) -> None:
    store = ObjectStoreResource(local_root=str(tmp_path))
    store.put_bytes("a", b"file")
    with pytest.raises(ObjectExistsError, match="'a/b'"):
        store.put_bytes("a/b", b"x")
    store.put_bytes("d/e", b"x")
    with pytest.raises(ObjectExistsError, match="'d'"):
        store.put_bytes("d", b"x", write_once=True)
    with pytest.raises(ObjectExistsError, match="'d'"):
        store.put_bytes("d", b"x")


def test_local_root_relative_to_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = ObjectStoreResource()  # default ".rai/objects"
    store.put_bytes("k", b"v")
    assert (tmp_path / ".rai" / "objects" / "k").read_bytes() == b"v"
    assert store.uri("k") == (tmp_path / ".rai" / "objects" / "k").resolve().as_uri()


# ---------------------------------------------------------------- S3 mode specifics


def test_s3_stores_sha256_metadata_and_content_type(s3_endpoint: str) -> None:
    bucket = _new_bucket(s3_endpoint)
    store = ObjectStoreResource(s3_bucket=bucket, s3_endpoint_url=s3_endpoint, s3_prefix="/p/")
    sha = store.put_bytes("k.json", b"{}", write_once=True, content_type="application/json")
    head = _s3_client(s3_endpoint).head_object(Bucket=bucket, Key="p/k.json")
    assert head["Metadata"]["sha256"] == sha
    assert head["ContentType"] == "application/json"
    assert store.list_keys("") == ["k.json"]


def test_s3_write_once_without_metadata_compares_downloaded_bytes(s3_endpoint: str) -> None:
    bucket = _new_bucket(s3_endpoint)
    _s3_client(s3_endpoint).put_object(Bucket=bucket, Key="foreign.bin", Body=b"abc")  # no sha256 metadata
    store = ObjectStoreResource(s3_bucket=bucket, s3_endpoint_url=s3_endpoint)
    store.put_bytes("foreign.bin", b"abc", write_once=True)
    with pytest.raises(ObjectExistsError):
        store.put_bytes("foreign.bin", b"abd", write_once=True)


def test_s3_invalid_prefix_config_rejected(s3_endpoint: str) -> None:
    store = ObjectStoreResource(s3_bucket="b", s3_endpoint_url=s3_endpoint, s3_prefix="a/../b")
    with pytest.raises(InvalidObjectKeyError, match="s3_prefix"):
        store.uri("k")


def test_s3_object_lock_compliance(s3_endpoint: str) -> None:
    bucket = _new_bucket(s3_endpoint, object_lock=True)
    client = _s3_client(s3_endpoint)
    store = ObjectStoreResource(s3_bucket=bucket, s3_endpoint_url=s3_endpoint, s3_object_lock_days=1)
    before = datetime.now(UTC)
    store.put_bytes("snap/locked.bin", b"locked", write_once=True)

    head = client.head_object(Bucket=bucket, Key="snap/locked.bin")
    assert head["ObjectLockMode"] == "COMPLIANCE"
    retain_until = head["ObjectLockRetainUntilDate"]
    assert before + timedelta(hours=23) < retain_until < before + timedelta(days=1, hours=1)

    with pytest.raises(ObjectExistsError):
        store.put_bytes("snap/locked.bin", b"other", write_once=True)
    # The locked version cannot be deleted, even bypassing governance (COMPLIANCE).
    version_id = head["VersionId"]
    for extra in ({}, {"BypassGovernanceRetention": True}):
        with pytest.raises(ClientError, match="AccessDenied"):
            client.delete_object(Bucket=bucket, Key="snap/locked.bin", VersionId=version_id, **extra)
    assert store.get_bytes("snap/locked.bin") == b"locked"
    # plain (mutable) puts are not locked
    store.put_bytes("mutable.bin", b"m")
    assert "ObjectLockMode" not in client.head_object(Bucket=bucket, Key="mutable.bin")


# ---------------------------------------------------------------- as a Dagster resource


def test_works_as_dagster_resource_with_env_config(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = _new_bucket(s3_endpoint)
    monkeypatch.setenv("TEST_OBJECT_STORE_BUCKET", bucket)

    @asset
    def stored(object_store: ObjectStoreResource) -> str:
        key = tenant_key("t1", "out.txt")
        object_store.put_bytes(key, b"hello", write_once=True)
        assert object_store.exists(key)
        return object_store.uri(key)

    resource = ObjectStoreResource(s3_bucket=EnvVar("TEST_OBJECT_STORE_BUCKET"), s3_endpoint_url=s3_endpoint)
    result = materialize([stored], resources={"object_store": resource})
    assert result.success
    assert result.output_for_node("stored") == f"s3://{bucket}/tenants/t1/out.txt"
    assert (
        _s3_client(s3_endpoint).get_object(Bucket=bucket, Key="tenants/t1/out.txt")["Body"].read() == b"hello"
    )


def test_s3_client_comes_from_dagster_aws_s3_resource(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """INF-3: both configurations get their client from ``S3Resource.get_client`` (once per store)."""
    calls: list[str | None] = []
    original = S3Resource.get_client

    def spy(self: S3Resource) -> object:
        calls.append(self.endpoint_url)
        return original(self)

    monkeypatch.setattr(S3Resource, "get_client", spy)
    bucket = _new_bucket(s3_endpoint)
    explicit = ObjectStoreResource(s3_bucket=bucket, s3=S3Resource(endpoint_url=s3_endpoint, max_attempts=2))
    shorthand = ObjectStoreResource(s3_bucket=bucket, s3_endpoint_url=s3_endpoint)
    explicit.put_bytes("a", b"1")
    assert explicit.exists("a")
    assert shorthand.get_bytes("a") == b"1"
    assert calls == [s3_endpoint, s3_endpoint]
    assert shorthand.s3_resource().max_attempts == 5
    with pytest.raises(ValueError, match="not both"):
        ObjectStoreResource(s3_bucket=bucket, s3=S3Resource(), s3_endpoint_url=s3_endpoint).exists("a")


def test_nested_s3_resource_resolves_env_config_in_a_run(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """As in definitions.py: the bucket and the S3Resource's endpoint are EnvVars resolved at run time."""
    bucket = _new_bucket(s3_endpoint)
    monkeypatch.setenv("TEST_OBJECT_STORE_BUCKET", bucket)
    monkeypatch.setenv("TEST_OBJECT_STORE_ENDPOINT", s3_endpoint)

    @asset
    def stored(object_store: ObjectStoreResource) -> str:
        object_store.put_bytes(tenant_key("t1", "nested.txt"), b"via S3Resource", write_once=True)
        return object_store.uri(tenant_key("t1", "nested.txt"))

    resource = ObjectStoreResource(s3_bucket=EnvVar("TEST_OBJECT_STORE_BUCKET"),
                                   s3=S3Resource(endpoint_url=EnvVar("TEST_OBJECT_STORE_ENDPOINT")))
    result = materialize([stored], resources={"object_store": resource})
    assert result.success
    assert result.output_for_node("stored") == f"s3://{bucket}/tenants/t1/nested.txt"
    body = _s3_client(s3_endpoint).get_object(Bucket=bucket, Key="tenants/t1/nested.txt")["Body"].read()
    assert body == b"via S3Resource"
