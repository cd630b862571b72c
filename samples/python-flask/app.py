"""The smallest Flask app kiln builds: `GET /` names the Python it runs on."""

import platform

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello():
    return f"Hello from kiln on Python {platform.python_version()}\n"
