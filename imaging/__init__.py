"""PIL-only image handling shared by the API, the workers and ``ml``.

The dependency rule (docs/architecture.md) lets ``app`` and ``ml`` share no code, yet the working copy
made at import (``app``) and the backbone input (``ml``) must convert a file's pixels identically, or a
sample would look different to pretraining than to the import check. So that one conversion lives here,
in a package that imports only PIL and numpy and that every side may import (tests/project/test_layout.py
checks both directions).
"""
