"""The sandbox's AWS: an in-process moto server on 127.0.0.1 (boto3 reaches it via endpoint_url).

In-process on purpose: the scenario can then give the backends what no AWS API can put (ECS service
events, RDS events, deployment times in the past); see shared/notes/sandbox-facts.md.
"""

from __future__ import annotations

import logging

from moto.server import ThreadedMotoServer

#: moto's fixed default account for the static sandbox credentials below.
ACCOUNT_ID = "123456789012"
#: Credentials the sandbox hands to boto3; moto accepts anything, real AWS would refuse these.
CREDENTIALS = {"aws_access_key_id": "forensics-sandbox", "aws_secret_access_key": "forensics-sandbox"}


class MotoServer:
    def __init__(self, region: str = "eu-west-1", port: int = 0):
        self.region = region
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.endpoint_url: str | None = None

    def start(self) -> "MotoServer":
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def client(self, service: str):
        """A plain boto3 client for *loading* the sandbox (the forensic clients are read-only)."""
        import boto3

        return boto3.client(service, region_name=self.region, endpoint_url=self.endpoint_url, **CREDENTIALS)

    def backend(self, service: str):
        """The in-process moto backend of ``service`` for this account and region."""
        from moto.backends import get_backend

        return get_backend(service)[ACCOUNT_ID][self.region]
