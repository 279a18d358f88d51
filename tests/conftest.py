"""Test-session order for `make test`, which runs the suite on several workers (pytest-xdist, `--dist loadfile`: a
file's tests stay on one worker, so its module-scoped fixtures run once). The longest files are queued first, so that
no worker is left with a long file at the end while the others idle; without xdist only the order changes."""

FIRST = ("tests/test_reproduce_later.py", "tests/test_notebooks.py", "tests/test_reproduce.py", "tests/test_forward.py",
         "tests/test_docs.py", "tests/test_segments_span.py")  # longest first (CI's --durations list)


def _rank(nodeid: str) -> int:
    return next((i for i, name in enumerate(FIRST) if nodeid.startswith(name + "::")), len(FIRST))


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: _rank(item.nodeid))  # stable: the order within a file is kept
