"""Make the site ``asv publish`` wrote self-contained: its pages load their libraries from the site, not from CDNs.

asv's ``index.html`` loads jQuery, flot (and three of its plug-ins), stupidtable, blueimp-md5
and bootstrap from public CDNs; served from a machine without internet (or opened from a CI
artifact on a plane) its graphs never draw, and the page sends the reader to asv's "external
dependencies failed to load" notice. This script copies the same libraries from their npm
packages (pinned in ``tools/asv_site/package.json`` and its lock file, installed with ``npm ci``
when they are not there yet) into ``HTML/vendor/`` and points the page's tags at those copies.

A library the page loads that is not listed in :data:`LIBRARIES` (a newer asv's template) is
an error naming its address, so the site never half-works. Run it after ``asv publish``::

    python tools/asv_offline.py [--html html] [--packages tools/asv_site]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ROOT / "tools" / "asv_site"

#: Each address asv's template loads -> (npm package, file in it, folders the file refers to beside it).
LIBRARIES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "https://code.jquery.com/jquery-3.3.1.min.js": ("jquery", "dist/jquery.min.js", ()),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js": ("flot", "jquery.flot.js", ()),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js": ("flot", "jquery.flot.time.js", ()),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js": (
        "flot",
        "jquery.flot.selection.js",
        (),
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js": (
        "flot",
        "jquery.flot.categories.js",
        (),
    ),
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js": (
        "flot-orderbars",
        "js/jquery.flot.orderBars.js",
        (),
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js": (
        "stupid-table-plugin",
        "stupidtable.min.js",
        (),
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js": ("blueimp-md5", "js/md5.min.js", ()),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js": (
        "bootstrap",
        "dist/js/bootstrap.min.js",
        (),
    ),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css": (
        "bootstrap",
        "dist/css/bootstrap.min.css",
        ("dist/fonts",),  # the stylesheet's glyph icons, ../fonts/ from it
    ),
}
#: A <script src=...> or <link href=...> tag that loads something from another host.
_EXTERNAL = re.compile(r"<(script|link)\b[^>]*?\b(?:src|href)=\"(https?://[^\"]+)\"[^>]*>", re.IGNORECASE)
#: Attributes that only make sense for a file from another origin (and break same-origin copies opened as files).
_CROSS_ORIGIN = re.compile(r"\s+(?:integrity|crossorigin|referrerpolicy)=\"[^\"]*\"")


class OfflineError(Exception):
    """Something the user can fix; printed as one line, exit status 2."""


def installed(packages: Path) -> Path:
    """``packages``/node_modules, installed from the lock file with ``npm ci`` when it is not there yet."""
    modules = packages / "node_modules"
    if not modules.is_dir():
        if shutil.which("npm") is None:
            raise OfflineError(f"npm is needed to install the site's libraries into {modules} (apt-get install npm)")
        done = subprocess.run(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
            cwd=packages,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            raise OfflineError(f"npm ci in {packages} failed: {last}")
    return modules


def external_tags(page: str) -> list[tuple[str, str]]:
    """(whole tag, address) of every script and stylesheet the page loads from another host."""
    return [(m.group(0), m.group(2)) for m in _EXTERNAL.finditer(page)]


def plan(html: Path) -> dict[Path, list[tuple[str, str]]]:
    """Per page of the site, (tag, address) of each library it loads from another host; unknown ones are an error."""
    if not (html / "index.html").is_file():
        raise OfflineError(f"no index.html in {html}: run asv publish first")
    pages = {page: external_tags(page.read_text(encoding="utf-8")) for page in sorted(html.glob("*.html"))}
    for page, tags in pages.items():
        for _, address in tags:
            if address not in LIBRARIES:
                raise OfflineError(f"{page.name} loads {address}, which tools/asv_offline.py does not know")
    return pages


def vendor(html: Path, pages: dict[Path, list[tuple[str, str]]], modules: Path) -> list[str]:
    """Copy the libraries of :func:`plan` into ``html``/vendor and point the pages there; returns their addresses.

    Each page is rewritten through a temporary file and a rename.
    """
    replaced = []
    for page, tags in pages.items():
        text = page.read_text(encoding="utf-8")
        for tag, address in tags:
            package, path, beside = LIBRARIES[address]
            for rel in (path, *beside):
                source, target = modules / package / rel, html / "vendor" / package / rel
                if not source.exists():
                    raise OfflineError(f"{source} is missing: is {package} in {PACKAGES / 'package.json'}?")
                target.parent.mkdir(parents=True, exist_ok=True)
                if source.is_dir():
                    shutil.copytree(source, target, dirs_exist_ok=True)
                else:
                    shutil.copyfile(source, target)
            text = text.replace(tag, _CROSS_ORIGIN.sub("", tag).replace(address, f"vendor/{package}/{path}"))
            replaced.append(address)
        tmp = page.with_name(f".{page.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, page)
    return replaced


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="asv_offline.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=Path("html"), help="the site asv publish wrote (default: html)")
    parser.add_argument(
        "--packages", type=Path, default=PACKAGES, help=f"folder of the libraries' package.json (default: {PACKAGES})"
    )
    args = parser.parse_args(argv)
    try:
        pages = plan(args.html)
        replaced = vendor(args.html, pages, installed(args.packages))
    except OfflineError as exc:
        print(f"asv_offline.py: error: {exc}", file=sys.stderr)
        return 2
    print(f"asv_offline.py: {len(replaced)} libraries now load from {args.html / 'vendor'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
