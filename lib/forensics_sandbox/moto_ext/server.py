"""The sandbox's in-process moto server: one AWS account per server, closing it, freeing its data."""

from __future__ import annotations

ACCOUNT_HEADER = "HTTP_X_MOTO_ACCOUNT_ID"
#: every service a sandbox puts data into (what :func:`drop_account` frees)
SERVICES = ("cloudwatch", "logs", "ecs", "rds", "elbv2", "ec2", "sts", "elasticache", "cloudtrail", "events",
            "scheduler", "backup", "acm", "route53", "cloudfront")


def _wsgi_server(moto_server):
    inner = getattr(moto_server, "_server", None)  # forensics MotoServer -> ThreadedMotoServer
    server = getattr(inner, "_server", None)  # ThreadedMotoServer -> werkzeug BaseWSGIServer
    if server is None:
        raise RuntimeError("the moto server is not started")
    return server


def isolate_account(moto_server, account_id: str) -> None:
    """Serve every request that reaches ``moto_server`` from ``account_id``.

    In-process moto servers share their backends; without this, two sandboxes (or a sandbox and a
    test's own moto server) in one process would mix their data. moto reads the account from the
    ``x-moto-account-id`` header, injected here server-side."""
    server = _wsgi_server(moto_server)
    app = server.app

    def with_account(environ, start_response):
        environ[ACCOUNT_HEADER] = account_id
        return app(environ, start_response)

    with_account.forensics_account_id = account_id  # type: ignore[attr-defined]
    server.app = with_account


def close_server(moto_server) -> None:
    """Close the listening socket after ``stop()`` (idempotent; werkzeug's serve_forever closes it on
    shutdown today, this keeps it so)."""
    inner = getattr(moto_server, "_server", None)
    server = getattr(inner, "_server", None)
    if server is not None:
        try:
            server.server_close()
        except OSError:
            pass


def backend(service: str, account_id: str, region: str):
    """The in-process moto backend of ``service`` for one account and region."""
    from moto.backends import get_backend

    return get_backend(service)[account_id][region]


def drop_account(account_id: str, services=SERVICES) -> None:
    """Forget everything ``account_id`` holds in ``services`` (memory of a stopped sandbox)."""
    from moto.backends import get_backend

    for service in services:
        try:
            get_backend(service).pop(account_id, None)
        except Exception:  # noqa: BLE001 - best effort at shutdown
            pass
