"""The memory watch: a sampler (what is measured), a policy (what it means) and the loop that
scales the engine. Kept apart so each can be tested alone."""

from coupa_async.memory.policy import Decision, MemoryPolicy, default_budget_bytes
from coupa_async.memory.sampler import MemorySample, ProcessTreeSampler
from coupa_async.memory.watch import MemoryWatch

__all__ = [
    "Decision",
    "MemoryPolicy",
    "MemorySample",
    "MemoryWatch",
    "ProcessTreeSampler",
    "default_budget_bytes",
]
