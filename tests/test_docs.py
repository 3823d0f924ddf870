"""The README is the product's front page in a clone: it stands alone (no link outside the
repository) and every image and document it links to is in the repository."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_readme_stands_alone_in_a_clone():
    text = (ROOT / "README.md").read_text()
    assert "../" not in text  # nothing outside the repository (such as ../shared)
    targets = re.findall(r"\]\(([^)#]+)\)", text)
    local = [t for t in targets if not t.startswith(("http://", "https://", "mailto:"))]
    assert "docs/img/dashboard.png" in local and "docs/img/reply-phone.png" in local
    missing = [t for t in local if not (ROOT / t).exists()]
    assert missing == []
