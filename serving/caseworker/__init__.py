"""The caseworker web page at /caseworker/ (a Starlette app mounted into the BentoML service).

`app` is the instance the service mounts; `create_app(backend)` builds one for tests.
"""

from safetynet.serving.caseworker.app import create_app

app = create_app()

__all__ = ["app", "create_app"]
