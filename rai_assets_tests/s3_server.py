"""Pytest plugin: a real moto S3 server on loopback for the whole test session.

Use the ``s3_endpoint`` fixture (import it into a test module, or list this module in the root
conftest's ``pytest_plugins``). The server speaks the real S3 HTTP API, so code under test uses
plain boto3 against it — nothing is mocked in-process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

_DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
# Removed for the session so a developer's own AWS profile/config can't leak into tests.
_UNSET_AWS_ENV = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Start a moto S3 server on 127.0.0.1 (free port), yield ``http://127.0.0.1:<port>``, stop it.

    Dummy AWS credentials and region are set in ``os.environ`` for the session and the previous
    values restored afterwards. The server thread is joined and its socket closed at teardown.
    """
    from moto.server import ThreadedMotoServer

    saved = {name: os.environ.get(name) for name in (*_DUMMY_AWS_ENV, *_UNSET_AWS_ENV)}
    os.environ.update(_DUMMY_AWS_ENV)
    for name in _UNSET_AWS_ENV:
        os.environ.pop(name, None)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    try:
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()
            # stop() shuts the serve loop down and joins the thread but leaves the socket open.
            wsgi_server = getattr(server, "_server", None)
            if wsgi_server is not None:
                wsgi_server.server_close()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
