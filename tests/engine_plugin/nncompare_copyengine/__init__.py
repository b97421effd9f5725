"""The ``copy`` engine: nncompare's local engine as another package would ship it, declared once."""

from dataclasses import dataclass

from nncompare.engines import EnginePlugin, PlotStyle, setting


@dataclass(frozen=True)
class CopySettings:
    """The copy engine's own setting, to show that a plug-in's flags and variables reach it."""

    label: bool = setting(
        False, env="NNCOMPARE_COPY_LABEL", flag="--copy-label", help="Say in the record that the copy engine ran."
    )


ENGINE = EnginePlugin(
    name="copy",
    engine_class="nncompare_copyengine.engine:CopyEngine",
    description="a copy of the local engine, from another package",
    settings=CopySettings,
    concurrent=False,
    style=PlotStyle(marker="D", linestyle="-."),
)
