"""Do the reference site's tables and code blocks fit a 1280 px wide browser window?

Builds the site (or takes a built one), opens every page in headless Chromium at the given
width, and measures each table and code block against the text column it sits in; optionally
saves a full-page screenshot of every page, to look at. Exits 1 if a table is wider than its
column, naming the page and the table's first header cells; code blocks that scroll sideways
are listed but allowed (a code line is never rewrapped). Needs the ``docs`` extra and
Chromium (Debian: ``apt-get install chromium``); no network::

    python docs/_tooling/check_tables.py                       # build, measure at 1280 px
    python docs/_tooling/check_tables.py --screenshots shots/  # and save a PNG per page
    python docs/_tooling/check_tables.py --site site/ --width 1024

How it measures: each page is copied with a small script appended that, once the page has
laid out, writes ``[column width, [[element, needed, shown, label], ...]]`` as JSON into the
``<body>``;
``chromium --dump-dom`` prints the resulting DOM, and this script reads it back. An element
"fits" when its own box is no wider than its column (a table squeezed into a scrolling frame
does not fit).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--virtual-time-budget=5000",
]

_PROBE = """<script>
window.addEventListener("load", () => setTimeout(() => {
  const column = document.querySelector(".md-content__inner");
  const limit = column.getBoundingClientRect().width
    - parseFloat(getComputedStyle(column).paddingLeft)
    - parseFloat(getComputedStyle(column).paddingRight);
  const found = [];
  for (const el of column.querySelectorAll("table, pre")) {
    const head = el.tagName === "TABLE"
      ? Array.from(el.querySelectorAll("th")).slice(0, 3).map(th => th.textContent.trim())
          .join(" | ")
      : el.textContent.trim().split("\\n")[0].slice(0, 60);
    // Material puts a table in a scrolling frame, and code in a scrolling <code>: it does not
    // fit when that frame would scroll, i.e. its content is wider than its visible box.
    const frame = el.tagName === "TABLE"
      ? (el.closest(".md-typeset__scrollwrap") || el) : (el.querySelector("code") || el);
    const needed = Math.max(frame.scrollWidth, el.scrollWidth);
    found.push([el.tagName.toLowerCase(), needed, frame.clientWidth, head]);
  }
  const out = document.createElement("pre");
  out.id = "table-probe";
  out.textContent = JSON.stringify([limit, found]);
  document.body.appendChild(out);
}, 500));
</script>"""
_RESULT = re.compile(r'<pre id="table-probe">(.*?)</pre>', re.S)


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    sys.exit("Chromium not found (Debian: apt-get update && apt-get install -y chromium)")


def run_chromium(args: list[str], profile: str) -> str:
    command = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    return done.stdout


def measure(page: Path, width: int, profile: str) -> tuple[float, list[list[object]]]:
    """``(column width, [[tag, needed width, shown width, label], ...])`` of one built page."""
    probe = page.with_name(f".probe-{page.name}")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", _PROBE + "</body>"))
    try:
        dom = run_chromium([f"--window-size={width},900", "--dump-dom", probe.as_uri()], profile)
    finally:
        probe.unlink()
    match = _RESULT.search(dom)
    if match is None:
        sys.exit(f"{page}: the probe did not report (is Chromium working?)")
    limit, found = json.loads(html.unescape(match.group(1)))
    return float(limit), found


def built_site(site: Path) -> Path:
    """The site, built into ``site`` as CI builds it (strict, offline)."""
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    subprocess.run(
        ["mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
        cwd=ROOT,
        env=env,
        check=True,
    )
    return site


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, help="a built site (default: build one now)")
    parser.add_argument("--width", type=int, default=1280, help="window width in CSS pixels")
    parser.add_argument("--screenshots", type=Path, help="save a full-page PNG of each page here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        site = args.site or built_site(Path(scratch) / "site")
        pages = sorted(p for p in site.rglob("index.html") if "examples" not in p.parts)
        too_wide = scrolling_code = 0
        for page in pages:
            name = str(page.parent.relative_to(site)) + "/"
            profile = tempfile.mkdtemp(dir=scratch)
            _, found = measure(page, args.width, profile)
            tables = [f for f in found if f[0] == "table"]
            print(f"{name:24} {len(tables):3} tables")
            for tag, needed, shown, label in found:
                if float(needed) <= float(shown) + 1:
                    continue
                if tag == "table":
                    too_wide += 1
                    print(f"  TABLE TOO WIDE: needs {needed:.0f} px, shows {shown:.0f}: {label}")
                else:
                    scrolling_code += 1
                    print(f"  code scrolls: needs {needed:.0f} px, shows {shown:.0f}: {label}")
            if args.screenshots is not None:
                args.screenshots.mkdir(parents=True, exist_ok=True)
                shot = args.screenshots / (name.strip("./").replace("/", "-") or "index")
                run_chromium(
                    [
                        f"--window-size={args.width},6000",
                        f"--screenshot={shot.with_suffix('.png')}",
                        page.as_uri(),
                    ],
                    profile,
                )
        print(
            f"{len(pages)} pages at {args.width} px: {too_wide} tables wider than their column; "
            f"{scrolling_code} code blocks scroll sideways (allowed: code lines are not rewrapped)"
        )
        return 1 if too_wide else 0


if __name__ == "__main__":
    sys.exit(main())
