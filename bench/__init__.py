"""The runservice benchmark: `python3 dev.py bench` (or `python -m bench`).

Measures, in one run, a bare grpc.aio echo server and a bare SQLite commit loop (the
references), then runservice itself, and reports each figure next to its reference.
"""
