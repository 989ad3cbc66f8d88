"""Code that relies on third-party internals, one module per patched library.

Each module's docstring names what it relies on (private names, the pinned
version) and why it exists; tests/patches/ fails when a pinned library changes
any of it. Nothing here imports the rest of loanflow: any layer may use it.
"""
