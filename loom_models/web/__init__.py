"""The review inbox: a small web application over a store, for the people in the loop.

    loom-db serve                                 # http://127.0.0.1:8400/
    loom-db serve --host 0.0.0.0 --token "$TOKEN"   # any other address needs a token

    from loom_models.web import create_app
    app = create_app(aio_storage, user="alice")   # an ASGI application

Needs the `web` extra: pip install "loom-models[web]".
"""

from .app import create_app

__all__ = ["create_app"]
