"""The bare Flask floor: one "hello" route, served by the gateway's own gunicorn settings.

``gunicorn -c gateway/gunicorn_conf.py bench.hello:app`` (the positional app
overrides the config's ``wsgi_app``), so workers, threads, keep-alive and
access logging are exactly the gateway's.
"""

from flask import Flask

app = Flask(__name__)


@app.get("/hello")
def hello() -> str:
    return "hello"
