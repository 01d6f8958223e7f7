"""TriggerPath: decision support for trigger point injections in back pain.

The public surface is re-exported here, lazily (PEP 562 ``__getattr__``): ``import
triggerpath.errors`` (which every entry point does) must not build every pydantic model of
the domain, or each CLI command would pay for the ones it never uses. ``from triggerpath
import assess`` works as before. Everything else is internal.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from triggerpath.domain.assessment import Assessment
    from triggerpath.domain.dosing import DoseCheck, DoseRequest, check_dose
    from triggerpath.domain.engine import assess
    from triggerpath.domain.planning import ProcedurePlan, plan_procedure
    from triggerpath.domain.policy import DEFAULT_POLICY, Policy
    from triggerpath.domain.recommendation import Caution, Reason, Recommendation, Verdict
    from triggerpath.domain.validation import parse_assessment
    from triggerpath.errors import (
        Conflict,
        InvalidInput,
        KnowledgeError,
        NotFound,
        TriggerPathError,
    )
    from triggerpath.knowledge import Knowledge, load_knowledge

#: public name -> the module that defines it
_EXPORTS = {
    "Assessment": "triggerpath.domain.assessment",
    "DoseCheck": "triggerpath.domain.dosing",
    "DoseRequest": "triggerpath.domain.dosing",
    "check_dose": "triggerpath.domain.dosing",
    "assess": "triggerpath.domain.engine",
    "ProcedurePlan": "triggerpath.domain.planning",
    "plan_procedure": "triggerpath.domain.planning",
    "DEFAULT_POLICY": "triggerpath.domain.policy",
    "Policy": "triggerpath.domain.policy",
    "Caution": "triggerpath.domain.recommendation",
    "Reason": "triggerpath.domain.recommendation",
    "Recommendation": "triggerpath.domain.recommendation",
    "Verdict": "triggerpath.domain.recommendation",
    "parse_assessment": "triggerpath.domain.validation",
    "Conflict": "triggerpath.errors",
    "InvalidInput": "triggerpath.errors",
    "KnowledgeError": "triggerpath.errors",
    "NotFound": "triggerpath.errors",
    "TriggerPathError": "triggerpath.errors",
    "Knowledge": "triggerpath.knowledge",
    "load_knowledge": "triggerpath.knowledge",
}

__all__ = [
    "DEFAULT_POLICY",
    "Assessment",
    "Caution",
    "Conflict",
    "DoseCheck",
    "DoseRequest",
    "InvalidInput",
    "Knowledge",
    "KnowledgeError",
    "NotFound",
    "Policy",
    "ProcedurePlan",
    "Reason",
    "Recommendation",
    "TriggerPathError",
    "Verdict",
    "assess",
    "check_dose",
    "load_knowledge",
    "parse_assessment",
    "plan_procedure",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (then it is an ordinary attribute)."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'triggerpath' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
