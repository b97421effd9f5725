"""nncompare's airspeed velocity suite: training time, accuracy and memory per engine, commit after commit.

See docs/benchmarks.md. ``common`` holds the grid and helpers; the other modules hold benchmarks.
"""
