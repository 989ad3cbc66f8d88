"""What one process holds and how it starts: the backends and services it opens (runtime),
a start that cannot work, the interpreter tuned for its role."""
