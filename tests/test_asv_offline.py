"""tools/asv_offline.py without a browser: what it knows and what it refuses (tests/browser serves its result)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "asv_offline.py"
sys.path.insert(0, str(ROOT / "tools"))

import asv_offline  # noqa: E402


def test_every_library_of_asvs_template_is_known():
    """The template of the installed asv loads only libraries the tool can supply from npm packages."""
    import asv

    template = (Path(asv.__file__).parent / "www" / "index.html").read_text()
    found = [address for _, address in asv_offline.external_tags(template)]
    assert len(found) == 10 and set(found) <= set(asv_offline.LIBRARIES)
    pinned = (ROOT / "tools" / "asv_site" / "package.json").read_text()
    assert all(f'"{package}"' in pinned for package, _, _ in asv_offline.LIBRARIES.values())


def test_an_unknown_library_is_a_one_line_error_and_nothing_is_changed(tmp_path):
    """A newer asv's template that loads another library: the tool says which, and leaves the site alone."""
    site = tmp_path / "html"
    site.mkdir()
    page = '<html><head><script src="https://cdn.example.org/new-lib.js"></script></head></html>\n'
    (site / "index.html").write_text(page)
    done = subprocess.run([sys.executable, str(TOOL), "--html", str(site)], capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "https://cdn.example.org/new-lib.js" in done.stderr
    assert (site / "index.html").read_text() == page
