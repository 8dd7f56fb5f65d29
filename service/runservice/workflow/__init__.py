"""The authoring API: what workflow authors import.

from runservice.workflow import create_step, create_workflow
"""

from runservice.workflow.builder import (
    BranchNode,
    ForeachNode,
    LoopNode,
    Node,
    ParallelNode,
    Runnable,
    SleepNode,
    SleepUntilNode,
    StepNode,
    Workflow,
    clone_workflow,
    create_workflow,
)
from runservice.workflow.context import Bail, ConditionContext, StepContext, StepRuntime, Suspension
from runservice.workflow.schedule import Missed, Overlap, Schedule
from runservice.workflow.schema import Schema, SchemaViolation, SuspendPayloadRefused, to_jsonable
from runservice.workflow.step import RetryConfig, Step, clone_step, create_step

__all__ = [
    "Bail",
    "BranchNode",
    "ConditionContext",
    "ForeachNode",
    "LoopNode",
    "Missed",
    "Node",
    "Overlap",
    "ParallelNode",
    "RetryConfig",
    "Runnable",
    "Schedule",
    "Schema",
    "SchemaViolation",
    "SleepNode",
    "SleepUntilNode",
    "Step",
    "StepContext",
    "StepNode",
    "StepRuntime",
    "SuspendPayloadRefused",
    "Suspension",
    "Workflow",
    "clone_step",
    "clone_workflow",
    "create_step",
    "create_workflow",
    "to_jsonable",
]
