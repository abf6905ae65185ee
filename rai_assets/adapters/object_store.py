"""Object store adapter: one Dagster resource over a local directory or an S3 bucket.

The same :class:`ObjectStoreResource` serves the embedded/local deployment (files under
``local_root``) and the cluster deployment (an S3 or S3-compatible bucket such as MinIO);
switching between them is configuration only (``s3_bucket`` empty or not).

Requirements served here:

* SNAP-2 — snapshots are write-once: ``put_bytes(..., write_once=True)`` never replaces an
  existing object with different bytes (atomic no-clobber create locally, conditional
  ``If-None-Match: *`` put on S3, optional S3 Object Lock in COMPLIANCE mode).
* GOV-6 — per-tenant isolation of stored objects by prefix: :func:`tenant_key` /
  :func:`tenant_prefix` build ``tenants/<tenant>/...`` keys, and every key is validated so a
  tenant id arriving from outside cannot escape its prefix (``..``, ``/``, ``\\`` and any
  character outside ``[A-Za-z0-9._=-]`` are rejected before any I/O).
* REG-6 — registration verifies the artifact exists: :meth:`ObjectStoreResource.exists`.
* INF-3 — in S3 mode the client is dagster-aws's :class:`~dagster_aws.s3.S3Resource`'s (endpoint,
  region, credentials, retries configured there, as Dagster deployments on AWS expect).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus, urlsplit

from dagster import ConfigurableResource
from dagster_aws.s3 import S3Resource
from pydantic import Field, PrivateAttr

from rai_assets.domain.ids import MAX_SLUG_LENGTH, SLUG_PATTERN

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

__all__ = [
    "InvalidObjectKeyError",
    "ObjectExistsError",
    "ObjectNotFoundError",
    "ObjectStoreError",
    "ObjectStoreResource",
    "tenant_key",
    "tenant_prefix",
    "validate_key",
]

_SEGMENT_RE = re.compile(r"[A-Za-z0-9._=-]+")
_PARTIAL_SEGMENT_RE = re.compile(r"[A-Za-z0-9._=-]*")
_MAX_KEY_LENGTH = 1024  # S3's limit on the full key (bytes; keys here are ASCII)
_MAX_SEGMENT_LENGTH = 255  # common filesystem limit on one path component
_SHA256_METADATA_KEY = "sha256"  # stored as x-amz-meta-sha256
# Temp files for atomic local writes end in "~tmp": "~" is not a valid key character, so an
# in-flight temp file can never collide with, or be listed as, a real key.
_TMP_SUFFIX = "~tmp"
_S3_MISSING_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
# Guards lazy client creation (rare) process-wide; module-level so resource instances hold
# no lock object (they stay copyable).
_CLIENT_LOCK = threading.Lock()
EVENTS_QUEUE_ENV = "RAI_S3_EVENTS_QUEUE_URL"  # the SQS queue the bucket's ObjectCreated notifications go to
_SQS_BATCH = 10  # SQS's most messages per ReceiveMessage / DeleteMessageBatch call
_SQS_REGION = re.compile(r"^sqs[.-]([a-z0-9-]+)\.amazonaws\.com")


class ObjectStoreError(Exception):
    """Base class of every error raised by :class:`ObjectStoreResource`."""


class InvalidObjectKeyError(ObjectStoreError, ValueError):
    """A key, prefix or tenant id is not a safe relative object path.

    Raised before any I/O. Part of the GOV-6 isolation boundary: keys must be ``/``-separated
    segments of ``[A-Za-z0-9._=-]``, with no empty, ``.`` or ``..`` segment.
    """


class ObjectExistsError(ObjectStoreError, RuntimeError):
    """A write-once put found the key already holding different bytes (SNAP-2).

    Also raised (local mode) when a key cannot be created because a path component of it is
    already an object, or the key itself names a directory of other objects.
    """


class ObjectNotFoundError(ObjectStoreError, LookupError):
    """The requested key does not exist in the store.

    A :class:`LookupError` rather than a :class:`KeyError` so the message is not repr-quoted.
    """


def _invalid(what: str, value: str, reason: str) -> InvalidObjectKeyError:
    return InvalidObjectKeyError(f"invalid object {what} {value!r}: {reason}")


def _check_segment(what: str, value: str, segment: str) -> None:
    if segment == "":
        raise _invalid(what, value, "empty path segment (leading, trailing or doubled '/')")
    if segment in (".", ".."):
        raise _invalid(what, value, f"'{segment}' path segments are not allowed")
    if len(segment) > _MAX_SEGMENT_LENGTH:
        raise _invalid(what, value, f"a path segment is longer than {_MAX_SEGMENT_LENGTH} characters")
    if not _SEGMENT_RE.fullmatch(segment):
        raise _invalid(what, value, f"segment {segment!r} has characters outside [A-Za-z0-9._=-]")


def validate_key(key: str) -> str:
    """Check that ``key`` is a safe, relative, ``/``-separated object key and return it.

    Rules: non-empty; at most 1024 characters; no leading ``/``; no backslash; every segment
    non-empty, not ``.`` or ``..``, at most 255 characters, and made only of
    ``[A-Za-z0-9._=-]``. This is a security boundary (GOV-6): tenant ids and other parts of
    keys come from outside, and a valid key can never address anything outside the store root
    or another tenant's ``tenants/<id>/`` prefix.

    Raises:
        InvalidObjectKeyError: naming the key and the rule it breaks.
    """
    if not isinstance(key, str):
        raise InvalidObjectKeyError(f"invalid object key {key!r}: must be a str")
    if key == "":
        raise _invalid("key", key, "must not be empty")
    if len(key) > _MAX_KEY_LENGTH:
        raise _invalid("key", key, f"longer than {_MAX_KEY_LENGTH} characters")
    if "\\" in key:
        raise _invalid("key", key, "backslashes are not allowed")
    if key.startswith("/"):
        raise _invalid("key", key, "must be relative (no leading '/')")
    for segment in key.split("/"):
        _check_segment("key", key, segment)
    return key


def _validate_prefix(prefix: str) -> str:
    """Validate a listing prefix: complete segments as in keys, a trailing partial segment allowed.

    ``""`` (everything), ``"tenants/t1/"`` and ``"tenants/t1/run-"`` are all valid. Returns the
    prefix unchanged.

    Raises:
        InvalidObjectKeyError: naming the prefix.
    """
    if not isinstance(prefix, str):
        raise InvalidObjectKeyError(f"invalid object prefix {prefix!r}: must be a str")
    if prefix == "":
        return prefix
    if len(prefix) > _MAX_KEY_LENGTH:
        raise _invalid("prefix", prefix, f"longer than {_MAX_KEY_LENGTH} characters")
    if "\\" in prefix:
        raise _invalid("prefix", prefix, "backslashes are not allowed")
    if prefix.startswith("/"):
        raise _invalid("prefix", prefix, "must be relative (no leading '/')")
    *complete, partial = prefix.split("/")
    for segment in complete:
        _check_segment("prefix", prefix, segment)
    if not _PARTIAL_SEGMENT_RE.fullmatch(partial):
        raise _invalid("prefix", prefix, f"segment {partial!r} has characters outside [A-Za-z0-9._=-]")
    return prefix


def _is_valid_key(key: str) -> bool:
    try:
        validate_key(key)
    except InvalidObjectKeyError:
        return False
    return True


def tenant_key(tenant_id: str, *parts: str) -> str:
    """Return the key ``tenants/<tenant_id>/<parts joined by '/'>`` (GOV-6 per-tenant prefix).

    ``tenant_id`` must be exactly one key segment (so ``"a/b"`` cannot reach into tenant
    ``a``'s namespace); each of ``parts`` may hold several ``/``-separated segments. With no
    ``parts`` the result is ``tenants/<tenant_id>`` — to *list* one tenant's objects use
    :func:`tenant_prefix`, whose trailing ``/`` stops ``t1`` from matching ``t10``.

    Raises:
        InvalidObjectKeyError: if the tenant id is not a single valid segment or the
            resulting key is invalid.
    """
    if not isinstance(tenant_id, str):
        raise InvalidObjectKeyError(f"invalid tenant id {tenant_id!r}: must be a str")
    if "/" in tenant_id or "\\" in tenant_id:
        raise _invalid("tenant id", tenant_id, "must be a single path segment (no '/' or '\\')")
    _check_segment("tenant id", tenant_id, tenant_id)
    if not SLUG_PATTERN.fullmatch(tenant_id) or len(tenant_id) > MAX_SLUG_LENGTH:
        raise _invalid("tenant id", tenant_id, "must be a slug [a-z0-9][a-z0-9-]* of at most 63 characters")
    return validate_key("/".join(("tenants", tenant_id, *parts)))


def tenant_prefix(tenant_id: str) -> str:
    """Return ``tenants/<tenant_id>/``: the listing prefix holding exactly one tenant's objects (GOV-6).

    Raises:
        InvalidObjectKeyError: if the tenant id is not a single valid segment.
    """
    return tenant_key(tenant_id) + "/"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _client_error_code(exc: Exception) -> str:
    response: Any = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _fsync_dir(path: Path) -> None:
    """Best-effort fsync of a directory so a rename/link into it survives a crash."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class ObjectStoreResource(ConfigurableResource):
    """Byte-object store over a local directory (embedded mode) or an S3 bucket (S3 mode).

    Mode is chosen by configuration alone: an empty ``s3_bucket`` stores files under
    ``local_root``; a non-empty one stores objects in that bucket (AWS, or any S3-compatible
    endpoint) through the client of dagster-aws's ``S3Resource`` (``s3``): endpoint, region,
    credentials and retries are configured there, or come from the usual AWS environment/config
    chain. The client is created lazily and cached per instance.

    Keys are ``/``-separated relative paths validated by :func:`validate_key` before any I/O
    (GOV-6); use :func:`tenant_key` to place objects under a tenant's prefix.

    Attributes:
        local_root: directory of the local store (relative paths resolve against the current
            working directory at call time). Used when ``s3_bucket`` is empty.
        s3_bucket: bucket name; non-empty selects S3 mode.
        s3: the dagster-aws ``S3Resource`` whose ``get_client()`` is used in S3 mode. Unset, one
            is built from ``s3_endpoint_url`` with ``max_attempts=5`` (credentials and region from
            the AWS environment).
        s3_endpoint_url: shorthand for ``S3Resource(endpoint_url=...)`` when ``s3`` is unset
            (MinIO, moto); empty means the AWS default. Setting both is an error. An IP-address
            endpoint is addressed path-style; an S3-compatible store on a host name must accept
            virtual-host requests, or set ``addressing_style = path`` in the AWS config file.
        s3_prefix: optional key prefix inside the bucket (validated like a key; surrounding
            ``/`` ignored).
        s3_object_lock_days: if > 0, write-once puts in S3 mode also set Object Lock
            ``COMPLIANCE`` retention until now + this many days (SNAP-2); the bucket must have
            Object Lock enabled, or S3 rejects the put.
        sqs_queue_url: URL of the SQS queue receiving the bucket's ``s3:ObjectCreated:*`` event
            notifications (S3 mode only); empty: the environment variable ``RAI_S3_EVENTS_QUEUE_URL``,
            and when that is empty too there is no queue (the landing sensor lists the bucket). See
            :meth:`receive_created_keys`.
    """

    local_root: str = ".rai/objects"
    s3_bucket: str = ""
    s3: S3Resource | None = Field(default=None, description="dagster-aws S3Resource giving the S3 client")
    s3_endpoint_url: str = ""
    s3_prefix: str = ""
    s3_object_lock_days: int = 0
    sqs_queue_url: str = Field(default="", description="SQS queue of the bucket's ObjectCreated notifications "
                               "(empty: env RAI_S3_EVENTS_QUEUE_URL; none: list the bucket)")

    _client: S3Client | None = PrivateAttr(default=None)
    _sqs_client: Any = PrivateAttr(default=None)

    # ------------------------------------------------------------------ public API

    @property
    def is_s3(self) -> bool:
        """True in S3 mode (``s3_bucket`` set), False in local mode."""
        return bool(self.s3_bucket)

    def put_bytes(
        self,
        key: str,
        data: bytes,
        *,
        write_once: bool = False,
        content_type: str = "application/octet-stream",
    ) -> str:
        """Store ``data`` under ``key`` and return its sha256 hex digest.

        Plain puts replace whatever is at ``key``. With ``write_once=True`` (SNAP-2) the put
        only ever creates: if ``key`` already holds identical bytes it is a no-op returning the
        same digest (idempotent retries); if it holds different bytes the stored object is left
        intact and :class:`ObjectExistsError` is raised.

        Local mode writes a temp file in the target directory, fsyncs it, then moves it into
        place atomically (``os.replace``; for write-once an ``os.link`` that fails if the key
        exists, so concurrent writers cannot clobber each other). Write-once files are made
        read-only (mode 0o444). ``content_type`` is not recorded locally.

        S3 mode stores the digest as object metadata ``sha256`` and the given content type.
        Write-once uses a conditional put (``If-None-Match: *``) and, when
        ``s3_object_lock_days > 0``, Object Lock COMPLIANCE retention.

        Raises:
            InvalidObjectKeyError: invalid key (before any I/O).
            ObjectExistsError: write-once conflict, or (local) a path clash with another object.
            botocore.exceptions.ClientError / OSError: other storage failures.
        """
        validate_key(key)
        data = bytes(data)
        digest = _sha256(data)
        if self.is_s3:
            self._s3_put(key, data, digest, write_once=write_once, content_type=content_type)
        else:
            self._local_put(key, data, digest, write_once=write_once)
        return digest

    def get_bytes(self, key: str) -> bytes:
        """Return the bytes stored under ``key``.

        Raises:
            InvalidObjectKeyError: invalid key (before any I/O).
            ObjectNotFoundError: no object at ``key`` (message names the key).
            botocore.exceptions.ClientError / OSError: other storage failures.
        """
        validate_key(key)
        if self.is_s3:
            from botocore.exceptions import ClientError

            try:
                response = self._s3().get_object(Bucket=self.s3_bucket, Key=self._s3_key(key))
            except ClientError as exc:
                if _client_error_code(exc) in _S3_MISSING_CODES:
                    raise self._not_found(key) from exc
                raise
            return response["Body"].read()
        path = self._local_file(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise self._not_found(key) from exc

    def exists(self, key: str) -> bool:
        """Return whether an object is stored under ``key`` (HEAD in S3 mode).

        Used by registration to verify an artifact is really there (REG-6).

        Raises:
            InvalidObjectKeyError: invalid key (before any I/O).
            botocore.exceptions.ClientError: S3 failures other than "not found".
        """
        validate_key(key)
        if self.is_s3:
            from botocore.exceptions import ClientError

            try:
                self._s3().head_object(Bucket=self.s3_bucket, Key=self._s3_key(key))
            except ClientError as exc:
                if _client_error_code(exc) in _S3_MISSING_CODES:
                    return False
                raise
            return True
        return self._local_file(key).is_file()

    def list_keys(self, prefix: str, *, page_size: int = 1000) -> list[str]:
        """Return the sorted keys starting with ``prefix`` (plain string-prefix match, as in S3).

        Keys are relative to the store root (``s3_prefix`` is stripped). ``prefix`` may be
        ``""`` (all keys) and may end in a partial segment; note ``"tenants/t1"`` also matches
        ``"tenants/t10/..."`` — list a tenant with :func:`tenant_prefix`. In S3 mode the listing
        is paginated with boto3's ``list_objects_v2`` paginator, ``page_size`` keys per request
        (ignored in local mode). Local mode skips in-flight temp files and symlinks.

        Raises:
            InvalidObjectKeyError: invalid prefix (before any I/O).
            ValueError: ``page_size`` < 1.
            botocore.exceptions.ClientError: S3 failures.
        """
        _validate_prefix(prefix)
        if page_size < 1:
            raise ValueError(f"page_size must be >= 1, got {page_size}")
        if self.is_s3:
            return self._s3_list(prefix, page_size)
        return self._local_list(prefix)

    def list_keys_modified(self, prefix: str, *, since: float = 0.0,
                           page_size: int = 1000) -> list[tuple[str, float]]:
        """``(key, modified Unix time)`` of the keys under ``prefix`` modified at or after ``since``, sorted.

        S3 mode filters the listing on ``LastModified`` (the listing itself is still O(keys under
        ``prefix``)); local mode uses the files' ``st_mtime``.

        Raises:
            InvalidObjectKeyError: invalid prefix (before any I/O).
        """
        _validate_prefix(prefix)
        if not self.is_s3:
            root = self._local_root()
            found: list[tuple[str, float]] = []
            for key in self._local_list(prefix):
                with contextlib.suppress(FileNotFoundError):
                    mtime = os.stat(root.joinpath(*key.split("/"))).st_mtime
                    if mtime >= since:
                        found.append((key, mtime))
            return found
        base = self._s3_base()
        paginator = self._s3().get_paginator("list_objects_v2")
        out: list[tuple[str, float]] = []
        for page in paginator.paginate(Bucket=self.s3_bucket, Prefix=base + prefix,
                                       PaginationConfig={"PageSize": page_size}):
            for obj in page.get("Contents", []):
                full = obj.get("Key", "")
                modified = obj["LastModified"].timestamp() if "LastModified" in obj else 0.0
                if full.startswith(base) and modified >= since:
                    out.append((full[len(base):], modified))
        return sorted(out)

    def uri(self, key: str) -> str:
        """Return a URI for ``key`` for metadata links: ``file:///abs/path`` or ``s3://bucket/prefix/key``.

        Does no I/O; the object need not exist.

        Raises:
            InvalidObjectKeyError: invalid key.
        """
        validate_key(key)
        if self.is_s3:
            return f"s3://{self.s3_bucket}/{self._s3_key(key)}"
        return self._local_file(key).as_uri()

    def local_path(self, key: str) -> Path | None:
        """Return the absolute file path of ``key`` in local mode, ``None`` in S3 mode.

        Does no I/O; the file need not exist.

        Raises:
            InvalidObjectKeyError: invalid key.
        """
        validate_key(key)
        if self.is_s3:
            return None
        return self._local_file(key)

    # ------------------------------------------------------------------ S3 event notifications (SQS)

    def events_queue_url(self) -> str:
        """The SQS queue URL of the bucket's event notifications: ``sqs_queue_url``, else env
        ``RAI_S3_EVENTS_QUEUE_URL``; ``""`` in local mode or when neither is set."""
        if not self.is_s3:
            return ""
        return self.sqs_queue_url or os.environ.get(EVENTS_QUEUE_ENV, "")

    def _sqs(self) -> Any:
        """The cached SQS client for :meth:`events_queue_url` (created on first use, thread-safe).

        Built on a fresh boto3 session with the credentials, profile, TLS settings and retries of
        :meth:`s3_resource`; the endpoint is the queue URL's scheme and host (``https://sqs.<region>.amazonaws.com``
        on AWS, the moto server in the tests), the region the ``S3Resource``'s, else the queue URL's, else the
        AWS environment's.

        Raises:
            ValueError: no queue is configured, or its URL has no scheme and host.
        """
        client = self._sqs_client
        if client is not None:
            return client
        url = self.events_queue_url()
        parts = urlsplit(url)
        if not url or not parts.scheme or not parts.netloc:
            raise ValueError(f"ObjectStoreResource: no usable SQS queue URL (sqs_queue_url / {EVENTS_QUEUE_ENV}): "
                             f"{url!r}")
        import boto3
        from dagster_aws.utils import construct_boto_client_retry_config

        s3 = self.s3_resource()
        region = s3.region_name
        if region is None:
            m = _SQS_REGION.match(parts.netloc)
            region = m[1] if m else None
        with _CLIENT_LOCK:
            if self._sqs_client is None:
                session = boto3.session.Session(profile_name=s3.profile_name)
                self._sqs_client = session.client(
                    "sqs", region_name=region, endpoint_url=f"{parts.scheme}://{parts.netloc}", use_ssl=s3.use_ssl,
                    verify=s3.verify, aws_access_key_id=s3.aws_access_key_id,
                    aws_secret_access_key=s3.aws_secret_access_key, aws_session_token=s3.aws_session_token,
                    config=construct_boto_client_retry_config(s3.max_attempts),
                )
            return self._sqs_client

    def receive_created_keys(self, *, max_messages: int = 1000) -> tuple[list[tuple[str, float]], list[str]]:
        """Receive the bucket's pending ``ObjectCreated`` notifications from :meth:`events_queue_url` (S3 → SQS).

        Calls ``ReceiveMessage`` (10 messages a call, no long polling) until the queue answers empty or
        ``max_messages`` were received. A message body is an S3 event (``{"Records": [...]}``), or one wrapped in
        an SNS notification (``{"Type": "Notification", "Message": "<S3 event>"}``). Records of other buckets or
        events, objects outside ``s3_prefix``, S3's ``s3:TestEvent`` and unreadable bodies yield no key. The
        messages are not deleted: call :meth:`delete_messages` with the returned receipt handles once the keys
        are handled (a message not deleted comes back after the queue's visibility timeout).

        Returns:
            ``(key relative to the store root, event Unix time)`` of each created object, in message order
            (URL-decoded as S3 encodes them), and the receipt handles of every message received, keys or not.

        Raises:
            ValueError: no queue configured (see :meth:`events_queue_url`).
            botocore.exceptions.ClientError: SQS failures (unknown queue, denied, …).
        """
        client = self._sqs()
        url = self.events_queue_url()
        base = self._s3_base()
        keys: list[tuple[str, float]] = []
        handles: list[str] = []
        while len(handles) < max_messages:
            response = client.receive_message(QueueUrl=url, MaxNumberOfMessages=min(_SQS_BATCH,
                                                                                   max_messages - len(handles)),
                                              WaitTimeSeconds=0)
            messages = response.get("Messages", [])
            if not messages:
                break
            for message in messages:
                handles.append(message["ReceiptHandle"])
                for full, when in _created_objects(message.get("Body", ""), self.s3_bucket):
                    if full.startswith(base) and _is_valid_key(full[len(base):]):
                        keys.append((full[len(base):], when))
        return keys, handles

    def delete_messages(self, receipt_handles: list[str]) -> int:
        """Delete received notifications from the queue, 10 per ``DeleteMessageBatch`` call; returns how many.

        Raises:
            ValueError: no queue configured.
            ObjectStoreError: SQS refused to delete some messages (their ids and reasons in the message).
            botocore.exceptions.ClientError: other SQS failures.
        """
        if not receipt_handles:
            return 0
        client = self._sqs()
        url = self.events_queue_url()
        failed: list[str] = []
        for start in range(0, len(receipt_handles), _SQS_BATCH):
            chunk = receipt_handles[start:start + _SQS_BATCH]
            response = client.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": h} for i, h in enumerate(chunk)])
            failed += [f"{f.get('Id')}: {f.get('Code')} {f.get('Message', '')}" for f in response.get("Failed", [])]
        if failed:
            raise ObjectStoreError(f"SQS queue {url!r} did not delete {len(failed)} messages: {failed[:5]}")
        return len(receipt_handles)

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _not_found(key: str) -> ObjectNotFoundError:
        return ObjectNotFoundError(f"no object stored under key {key!r}")

    @staticmethod
    def _conflict(key: str, existing: str, new: str) -> ObjectExistsError:
        return ObjectExistsError(
            f"write-once object {key!r} already exists with different content "
            f"(stored sha256 {existing}, new sha256 {new}); refusing to overwrite"
        )

    # ---- local mode

    def _local_root(self) -> Path:
        return Path(self.local_root).expanduser().resolve()

    def _local_file(self, key: str) -> Path:
        # key is validated: no '..', no absolute path, so the result stays under the root.
        return self._local_root().joinpath(*key.split("/"))

    def _local_put(self, key: str, data: bytes, digest: str, *, write_once: bool) -> None:
        path = self._local_file(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise ObjectExistsError(
                f"cannot store key {key!r}: a parent path of it is already an object"
            ) from exc
        if write_once and path.is_file():
            # Fast path for idempotent retries: skip the temp-file write entirely.
            self._local_check_same(key, path, digest)
            return
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TMP_SUFFIX)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            # mkstemp creates 0o600; make objects readable like ordinary files, read-only if
            # write-once (set before the file becomes visible under its key).
            os.chmod(tmp, 0o444 if write_once else 0o644)
            if write_once:
                self._local_link_no_clobber(key, tmp, path, digest)
            else:
                try:
                    os.replace(tmp, path)
                except IsADirectoryError as exc:
                    raise ObjectExistsError(
                        f"cannot store key {key!r}: it is a prefix of other objects"
                    ) from exc
            _fsync_dir(path.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _local_link_no_clobber(self, key: str, tmp: Path, path: Path, digest: str) -> None:
        """Atomically create ``path`` from ``tmp`` unless it exists (then compare contents)."""
        try:
            os.link(tmp, path)
            return
        except FileExistsError:
            pass
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV):
                raise
            # Filesystem without hard links: check-then-replace (not race-free).
            if not path.exists():
                os.replace(tmp, path)
                return
        self._local_check_same(key, path, digest)

    def _local_check_same(self, key: str, path: Path, digest: str) -> None:
        try:
            existing = _sha256(path.read_bytes())
        except IsADirectoryError as exc:
            raise ObjectExistsError(f"cannot store key {key!r}: it is a prefix of other objects") from exc
        if existing != digest:
            raise self._conflict(key, existing, digest)

    def _local_list(self, prefix: str) -> list[str]:
        root = self._local_root()
        base_dir, _, _ = prefix.rpartition("/")
        start = root.joinpath(*base_dir.split("/")) if base_dir else root
        if not start.is_dir():
            return []
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start):
            rel_dir = Path(dirpath).relative_to(root).as_posix()
            rel_dir = "" if rel_dir == "." else rel_dir + "/"
            dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
            for name in filenames:
                if os.path.islink(os.path.join(dirpath, name)):
                    continue
                key = rel_dir + name
                if key.startswith(prefix) and _is_valid_key(key):
                    keys.append(key)
        return sorted(keys)

    # ---- S3 mode

    def s3_resource(self) -> S3Resource:
        """The dagster-aws ``S3Resource`` this store's S3 client comes from (INF-3).

        ``s3`` when configured, else ``S3Resource(endpoint_url=s3_endpoint_url, max_attempts=5)``.

        Raises:
            ValueError: both ``s3`` and ``s3_endpoint_url`` are set (the endpoint belongs in ``s3``).
        """
        if self.s3 is not None:
            if self.s3_endpoint_url:
                raise ValueError("ObjectStoreResource: set the endpoint in s3=S3Resource(endpoint_url=...) "
                                 "or s3_endpoint_url, not both")
            return self.s3
        return S3Resource(endpoint_url=self.s3_endpoint_url or None, max_attempts=5)

    def _s3(self) -> S3Client:
        """Return the cached S3 client from :meth:`s3_resource`, creating it on first use (thread-safe).

        ``S3Resource.get_client`` builds it on a fresh boto3 session (boto3's default session is not
        safe to create clients from concurrently), with standard-mode retries.
        """
        client = self._client
        if client is not None:
            return client
        with _CLIENT_LOCK:
            if self._client is None:
                self._client = self.s3_resource().get_client()
            return self._client

    def _s3_base(self) -> str:
        """The normalized ``s3_prefix`` with a trailing ``/``, or ``""``."""
        prefix = self.s3_prefix.strip("/")
        if not prefix:
            return ""
        try:
            validate_key(prefix)
        except InvalidObjectKeyError as exc:
            raise InvalidObjectKeyError(f"invalid s3_prefix {self.s3_prefix!r}: {exc}") from exc
        return prefix + "/"

    def _s3_key(self, key: str) -> str:
        return self._s3_base() + key

    def _s3_put(self, key: str, data: bytes, digest: str, *, write_once: bool, content_type: str) -> None:
        from botocore.exceptions import ClientError

        params: dict[str, Any] = {
            "Bucket": self.s3_bucket,
            "Key": self._s3_key(key),
            "Body": data,
            "ContentType": content_type,
            "Metadata": {_SHA256_METADATA_KEY: digest},
        }
        if write_once:
            params["IfNoneMatch"] = "*"
            if self.s3_object_lock_days > 0:
                params["ObjectLockMode"] = "COMPLIANCE"
                params["ObjectLockRetainUntilDate"] = datetime.now(UTC) + timedelta(
                    days=self.s3_object_lock_days
                )
        client = self._s3()
        attempts = 3
        for attempt in range(attempts):
            try:
                client.put_object(**params)
                return
            except ClientError as exc:
                code = _client_error_code(exc)
                if write_once and code == "PreconditionFailed":
                    break  # the key exists: compare below
                if write_once and code == "ConditionalRequestConflict" and attempt < attempts - 1:
                    continue  # a concurrent conditional write was in flight: retry
                raise
        existing = self._s3_stored_sha256(key)
        if existing != digest:
            raise self._conflict(key, existing, digest)

    def _s3_stored_sha256(self, key: str) -> str:
        """Digest of the stored object: from its ``sha256`` metadata, else by downloading it."""
        from botocore.exceptions import ClientError

        try:
            head = self._s3().head_object(Bucket=self.s3_bucket, Key=self._s3_key(key))
        except ClientError as exc:
            if _client_error_code(exc) in _S3_MISSING_CODES:
                raise self._not_found(key) from exc
            raise
        stored = head.get("Metadata", {}).get(_SHA256_METADATA_KEY)
        if stored:
            return stored
        return _sha256(self.get_bytes(key))

    def _s3_list(self, prefix: str, page_size: int) -> list[str]:
        base = self._s3_base()
        paginator = self._s3().get_paginator("list_objects_v2")
        keys: list[str] = []
        pages = paginator.paginate(
            Bucket=self.s3_bucket, Prefix=base + prefix, PaginationConfig={"PageSize": page_size}
        )
        for page in pages:
            for obj in page.get("Contents", []):
                full = obj.get("Key", "")
                if full.startswith(base):
                    keys.append(full[len(base) :])
        return sorted(keys)


def _event_time(text: str) -> float:
    """Unix time of an S3 event's ``eventTime`` (ISO 8601, ``Z``); 0.0 when unreadable."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return 0.0


def _created_objects(body: str, bucket: str) -> list[tuple[str, float]]:
    """``(full object key, event Unix time)`` of the ``ObjectCreated`` records of ``bucket`` in one SQS body.

    Reads S3 event notifications as S3 sends them to SQS (``{"Records": [{"eventName": "ObjectCreated:Put",
    "eventTime": ..., "s3": {"bucket": {"name": ...}, "object": {"key": <URL-encoded>}}}]}``), also wrapped
    in an SNS notification. Anything else (``s3:TestEvent``, other events or buckets, not JSON) gives ``[]``.
    """
    try:
        event = json.loads(body)
        if isinstance(event, dict) and event.get("Type") == "Notification" and isinstance(event.get("Message"), str):
            event = json.loads(event["Message"])
    except ValueError:
        return []
    records = event.get("Records") if isinstance(event, dict) else None
    found: list[tuple[str, float]] = []
    for record in records if isinstance(records, list) else []:
        try:
            if not str(record["eventName"]).startswith("ObjectCreated:") or record["s3"]["bucket"]["name"] != bucket:
                continue
            found.append((unquote_plus(record["s3"]["object"]["key"]), _event_time(record.get("eventTime", ""))))
        except (KeyError, TypeError):
            continue
    return found
