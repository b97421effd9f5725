"""The local engine: every shard's trainer in this process, one after another (``engine.LocalEngine``)."""

from nncompare.engines.plugin import EnginePlugin, PlotStyle

ENGINE = EnginePlugin(
    name="local",
    engine_class="nncompare.engines.local.engine:LocalEngine",
    description="this process, one shard after another: the reference and the embedded default",
    concurrent=False,  # the round's critical path is the sum of the shards' compute
    style=PlotStyle(marker="o", linestyle="-", markersize=9),
    order=0,
)
