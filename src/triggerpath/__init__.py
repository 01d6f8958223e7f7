"""TriggerPath: decision support for trigger point injections in back pain.

The public surface is re-exported here; everything else is internal.
"""

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
