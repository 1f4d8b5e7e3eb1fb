"""What several test modules share: each helper lives here once, and no test module imports
another. The fixtures built on them are in ``tests/conftest.py``.

- ``paths``: the repository, the package, the examples, the tests' data (``tests/data/``).
- ``constants``: credentials, sids, Twilio's token body, identities.
- ``network``: a free port of 127.0.0.1. ``clock``: a fake clock for the running loop.
- ``threaded``: a server on its own loop in a thread, for code that runs ``asyncio.run()``.
- ``hostile``: a misbehaving HTTP server. ``forward_proxy``: an HTTP forward proxy.
  ``leaks``: the connections a client holds.
- ``cli``: the command line as a subprocess, and its results files.
- ``serve``: ``serve`` as a subprocess or in this process, and the app it builds.
- ``endpoint``: the FastAPI router inside an app, and the answers a phone accepts.
- ``readme``: README's code blocks. ``subprocesses``: a child process without some packages.
"""
