"""The edge signal pipeline: per-metric chains of stages (validate -> filter -> derive -> compress).

One :class:`Pipeline` per device turns chunks of device readings into the streams to send: range
checked, flagged, filtered, with derived metrics (heart rate, RR intervals, pulse rate), waveforms
on a lossless integer grid and slow vitals compressed without ever hiding a threshold crossing.
"""

from edge.pipeline._chain import Pipeline, StreamPipeline
from edge.pipeline._options import StageOptions
from edge.pipeline._schema import pipeline_problems
from edge.pipeline._stage import PipelineConfigError, Stage
from edge.pipeline.builtin import BUILTIN_STAGES, DEFAULT_CHAINS, default_chain
from edge.pipeline.registry import STAGES, register_stage, stage_class

__all__ = [
    "BUILTIN_STAGES",
    "DEFAULT_CHAINS",
    "STAGES",
    "Pipeline",
    "PipelineConfigError",
    "Stage",
    "StageOptions",
    "StreamPipeline",
    "default_chain",
    "pipeline_problems",
    "register_stage",
    "stage_class",
]
