"""Static mode: the Program IR, reverse mode, the Executor and scopes.

See DESIGN.md: plain records (:mod:`.framework`), a table of grad rules
(:mod:`torchfluid.ops`) walked in reverse by :mod:`.backward`, and a short interpreter
over a cached plan (:mod:`.plan`, :mod:`.executor`).
"""

from .. import unique_name
from . import clip as _clip  # noqa: F401  (registers the clipping of static (param, grad) pairs)
from . import program_desc as _program_desc  # noqa: F401  (registers Program.desc / parse_from_string)
from .backward import append_backward
from . import compiler
from .compiler import BuildStrategy, CompiledProgram, ExecutionStrategy, cpu_places, cuda_pinned_places, cuda_places
from .executor import Executor, FeedError
from .framework import (
    Block,
    OpRole,
    Operator,
    Parameter,
    Program,
    Variable,
    default_main_program,
    default_startup_program,
    program_guard,
)
from .plan import OpRunError
from .scope import LoDTensor, Scope, global_scope, scope_guard

__all__ = [
    "Program",
    "Block",
    "Variable",
    "Parameter",
    "Operator",
    "OpRole",
    "program_guard",
    "default_main_program",
    "default_startup_program",
    "unique_name",
    "append_backward",
    "Executor",
    *compiler.__all__,
    "FeedError",
    "OpRunError",
    "Scope",
    "LoDTensor",
    "global_scope",
    "scope_guard",
]
