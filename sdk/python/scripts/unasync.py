"""Generate ``_sync_client.py`` from ``_async_client.py`` (run after editing the latter).

``python sdk/python/scripts/unasync.py`` writes the file; ``--check`` exits 1 if it is stale.
"""

import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "purser"

REPLACEMENTS = [
    (
        r'"""The asynchronous client\..*?"""',
        '"""The synchronous client. Generated from ``_async_client.py`` by\n'
        '``sdk/python/scripts/unasync.py``: do not edit."""',
    ),
    (r"\bAsyncPurserClient\b", "PurserClient"),
    (r"\bAsyncIterator\b", "Iterator"),
    (r"\bAsyncRetrying\b", "Retrying"),
    (r"\bAsyncBaseTransport\b", "BaseTransport"),
    (r"\bhttpx\.AsyncClient\b", "httpx.Client"),
    (r"\(async\)", "(sync)"),
    (r"\basync def __aenter__\b", "def __enter__"),
    (r"\basync def __aexit__\b", "def __exit__"),
    (r"\baclose\b", "close"),
    (r"\basync def\b", "def"),
    (r"\basync for\b", "for"),
    (r"\basync with\b", "with"),
    (r"\bawait ", ""),
    (r"for item in pager\.items\(page\):\n\s+yield item", "yield from pager.items(page)"),
]


def generate() -> str:
    text = (PACKAGE / "_async_client.py").read_text()
    for pattern, replacement in REPLACEMENTS:
        text = re.sub(pattern, replacement, text, flags=re.DOTALL)
    ruff = Path(sys.executable).parent / "ruff"
    # Renamed imports may fall out of order (AsyncIterator, Iterable -> Iterator, Iterable):
    # sort them, then format, as ruff would the file.
    for command in (["check", "--select", "I", "--fix", "--quiet"], ["format"]):
        text = subprocess.run(  # noqa: S603 - our own ruff, fixed arguments
            [str(ruff), *command, "--stdin-filename", str(PACKAGE / "_sync_client.py"), "-"],
            input=text,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return text


def main() -> int:
    target = PACKAGE / "_sync_client.py"
    text = generate()
    if "--check" in sys.argv:
        return 0 if target.exists() and target.read_text() == text else 1
    target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
