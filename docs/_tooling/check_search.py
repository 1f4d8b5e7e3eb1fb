"""Does the site's own search find each task's page first?

Builds the site (or takes a built one), serves it on 127.0.0.1, and asks the theme's own search
worker (mkdocs-material's, in headless Chromium: the code a reader's browser runs) each query
of `QUERIES`. The first page it lists must be the task's page. Exits 1 naming every query that
lands elsewhere, with the pages it listed. Needs the ``docs`` extra and Chromium (Debian:
``apt-get install chromium``); no network::

    python docs/_tooling/check_search.py                # build, then ask every query
    python docs/_tooling/check_search.py --site site/   # a built site
    python docs/_tooling/check_search.py --show 5 "retry after"

How it asks: a small page is added to the served site that loads ``search_index.json``, starts
the worker with it as the theme does, sends each query, and posts the pages of each answer, best
first, as JSON back to the server. An image the server holds until then keeps the page loading,
so ``chromium --dump-dom`` does not leave before the answers are in.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_tables import built_site, run_chromium

# A reader's words for each task, and the guide page that must come first for them.
QUERIES: dict[str, str] = {
    "quickstart": "index.md",
    "install": "index.md",
    "create token": "index.md",
    "region": "configuration.md",
    "forward proxy": "configuration.md",
    "opentelemetry": "configuration.md",
    "handle 429": "errors.md",
    "retry": "errors.md",
    "10000": "batches.md",
    "batch": "batches.md",
    "concurrency limit": "batches.md",
    "enroll": "enroll.md",
    "resume": "enroll.md",
    "csv": "enroll.md",
    "fastapi": "backend.md",
    "authorize": "backend.md",
    "deploy": "deployment.md",
    "reverse proxy": "deployment.md",
    "tls": "deployment.md",
    "docker": "deployment.md",
    "systemd": "deployment.md",
    "kubernetes": "deployment.md",
    "workers": "deployment.md",
    "test": "testing.md",
    "pytest": "testing.md",
    "mock": "testing.md",
    "benchmark": "performance.md",
    "aiohttp versions": "compatibility.md",
    "layers": "architecture.md",
    "mkdocs": "development.md",
    # A name of the API still finds its reference page first.
    "LimiterState": "reference/client.md",
    "EnrollmentResult": "reference/models.md",
    "identity_hash": "reference/fastapi.md",
}

_PROBE = """<!doctype html><html><body><img src="wait" alt=""><script>
(async () => {
  let answers = {};
  try {
    const index = await (await fetch("search/search_index.json")).json();
    const worker = new Worker(%(worker)s);
    const ask = message => new Promise(resolve => {
      worker.onmessage = event => resolve(event.data);
      worker.postMessage(message);
    });
    // The theme's messages: 0 sets the index up, 2 asks a query (answered by 3).
    await ask({type: 0, data: {config: index.config, docs: index.docs,
                               options: {suggest: false}}});
    for (const query of %(queries)s) {
      const answer = await ask({type: 2, data: query});
      answers[query] = answer.data.items.map(group => group[0].location.split("#")[0]);
    }
  } catch (error) {
    answers = {"error": String(error)};
  }
  await fetch("result", {method: "POST", body: JSON.stringify(answers)});
})();
</script></body></html>"""
_WAIT_SECONDS = 120


def page_of(location: str) -> str:
    """``batches/`` (a search result's location) as ``batches.md``; the home page as index.md."""
    return f"{location.strip('/') or 'index'}.md"


def ask(site: Path, queries: list[str], profile: str) -> dict[str, list[str]]:
    """Each query's answer: the pages the theme's search lists, best first."""
    (worker,) = (site / "assets" / "javascripts" / "workers").glob("search.*.min.js")
    probe = site / ".search-probe.html"
    probe.write_text(
        _PROBE
        % {
            "worker": json.dumps(f"assets/javascripts/workers/{worker.name}"),
            "queries": json.dumps(queries),
        }
    )
    posted: list[bytes] = []
    done = threading.Event()
    handler = functools.partial(_ProbeHandler, posted, done, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{probe.name}"
        run_chromium(["--window-size=1280,900", "--dump-dom", url], profile)
    finally:
        done.set()
        server.shutdown()
        probe.unlink()
    if not posted:
        sys.exit("the search probe did not report (is Chromium working?)")
    answers = json.loads(posted[0])
    if "error" in answers:
        sys.exit(f"the search probe failed: {answers['error']}")
    return {query: [page_of(location) for location in pages] for query, pages in answers.items()}


class _ProbeHandler(http.server.SimpleHTTPRequestHandler):
    """The site's files, plus ``POST /result`` (the answers) and ``GET /wait`` (held till then)."""

    def __init__(self, posted: list[bytes], done: threading.Event, *args: Any, **kw: Any) -> None:
        self.posted, self.done = posted, done
        super().__init__(*args, **kw)

    def do_POST(self) -> None:
        self.posted.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.done.set()
        self.send_response(204)
        self.end_headers()

    def do_GET(self) -> None:
        if self.path != "/wait":
            super().do_GET()
            return
        self.done.wait(_WAIT_SECONDS)
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, help="a built site (default: build one now)")
    parser.add_argument("--show", type=int, default=3, help="pages to show per query")
    parser.add_argument("query", nargs="*", help="ask these instead (nothing is required)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        site = args.site or built_site(Path(scratch) / "site")
        expected = dict.fromkeys(args.query, "") or QUERIES
        answers = ask(site, list(expected), tempfile.mkdtemp(dir=scratch))
    wrong = 0
    for query, page in expected.items():
        found = answers[query]
        verdict = "" if not page else ("ok" if found[:1] == [page] else f"WANTED {page}")
        wrong += verdict.startswith("WANTED")
        print(f"{query!r:24} {verdict:24} {', '.join(found[: args.show]) or '(nothing)'}")
    print(f"{len(expected)} queries: {wrong} find another page first")
    return 1 if wrong else 0


if __name__ == "__main__":
    sys.exit(main())
