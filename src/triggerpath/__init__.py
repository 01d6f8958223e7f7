"""TriggerPath: decision support for trigger point injections in back pain.

The public surface is re-exported here; everything else is internal.
"""

from triggerpath.domain.assessment import Assessment
from triggerpath.domain.engine import assess
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
    "InvalidInput",
    "Knowledge",
    "KnowledgeError",
    "NotFound",
    "Policy",
    "Reason",
    "Recommendation",
    "TriggerPathError",
    "Verdict",
    "assess",
    "load_knowledge",
    "parse_assessment",
]
__version__ = "0.1.0"
