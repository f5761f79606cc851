"""The baseline of ``bench/api_overhead.py``: the smallest Flask app that answers JSON.

Served by the same gunicorn settings as the API (``gunicorn.conf.py``), so the ratio of the
two request rates is the cost the API adds on top of Flask and gunicorn themselves.
"""

from flask import Flask

app = Flask(__name__)


@app.get("/hello")
def hello() -> dict[str, str]:
    return {"hello": "world"}
