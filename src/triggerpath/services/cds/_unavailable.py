"""The card for a record that could not be read in time: it explains, it never hangs."""

from __future__ import annotations

import uuid
from typing import Any

from triggerpath.services.cds._model import (
    CARD_NS,
    NO_LINKS,
    TOPIC_SYSTEM,
    TRACE_KEY,
    Card,
    CdsOptions,
    Coding,
    Link,
    Source,
)


def source_unavailable(
    hook: str,
    hook_instance: str,
    *,
    why: str,
    knowledge_version: str,
    patient_id: str | None = None,
    options: CdsOptions = NO_LINKS,
) -> dict[str, Any]:
    """A warning that no TPI check ran because the EHR's FHIR server was too slow."""
    url = options.patient_url(patient_id)
    topic = Coding(
        system=TOPIC_SYSTEM,
        code="source-unavailable",
        display="Record unavailable",
        version=knowledge_version,
    )
    return Card(
        uuid=str(uuid.uuid5(CARD_NS, f"{hook_instance}|source-unavailable")),
        summary="TriggerPath could not read the record in time: no TPI checks were made",
        detail=(
            f"{why}\n\nNo contraindication, medication or dose check ran for this "
            "patient. Check them yourself before any TPI (S002.32), or try again.\n\n"
            f"Sources: S002.32 · TriggerPath knowledge {knowledge_version}."
        ),
        indicator="warning",
        source=Source(label="TriggerPath", topic=topic),
        links=[Link(label="Open in TriggerPath", url=url)] if url else None,
        extension={
            TRACE_KEY: {
                "rule": "fhir_server.timeout",
                "hook": hook,
                "hookInstance": hook_instance,
                "knowledgeVersion": knowledge_version,
                "statementIds": ["S002.32"],
                "why": why,
            }
        },
    ).as_json()
