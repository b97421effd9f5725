"""``nncompare gate``: build a base and a head commit with asv, run them interleaved, judge the head.

:mod:`nncompare.gate.asvrun` drives asv and reads its results; :mod:`nncompare.gate.judge`
turns them into verdicts and the exit code (docs/benchmarks.md, "Gate a change").
"""
