"""Schemathesis against ``/openapi.json``: every operation, every check, a valid key.

A bounded, derandomized run inside ``make test``: ``FUZZ_EXAMPLES`` examples per operation
in the fuzzing phase (20 by default), after the schema's examples and the coverage phase;
an operation's test stops at its first failure. ``make fuzz`` is the long run that
reports every distinct failure. The server under the fuzzer, its settings and its seed
data: ``tests/fuzz_support.py``.
"""

import os
from collections.abc import Iterator

import httpx
import pytest
import schemathesis

from tests.conftest import _fresh_database
from tests.fuzz_support import Seeded, build_schema, call_kwargs, openapi_document, running_target

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or 20)
SEED = int(os.environ["FUZZ_SEED"]) if os.environ.get("FUZZ_SEED") else None
DOCUMENT = openapi_document()

schema = build_schema(DOCUMENT, max_examples=EXAMPLES, seed=SEED)


@pytest.fixture(scope="module")
def fuzz_target(server_url: str) -> Iterator[tuple[str, Seeded]]:
    """A seeded Purser on a database of its own, serving the document the tests were
    generated from."""
    for database_url in _fresh_database(server_url):
        with running_target(database_url) as (base_url, seeded):
            assert httpx.get(f"{base_url}/openapi.json", timeout=30).json() == DOCUMENT
            yield base_url, seeded


@pytest.fixture(autouse=True)
def _operation_in_node_id(request: pytest.FixtureRequest) -> None:
    """schemathesis names each item ``test_api[METHOD /path]``, but pytest 9.2 builds node
    ids from the undecorated name, so all would read ``test_api`` in the summary."""
    node = request.node
    parent = getattr(node.parent, "id", None)
    if parent is not None and "[" in node.name and not node.nodeid.endswith("]"):
        node._id = parent.child(node.name)


@schema.parametrize()
def test_api(case: schemathesis.Case, fuzz_target: tuple[str, Seeded]) -> None:
    case.call_and_validate(**call_kwargs(case))
