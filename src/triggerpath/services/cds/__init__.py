"""CDS Hooks 2.0 cards from a patient's record, draft orders and the engine's result.

Pure: the record comes in through the :class:`Record` port (the FHIR adapter's
``PatientSnapshot`` fits it), FHIR reading and writing through the :class:`Fhir` port,
time as ``record.now``. The engine decides (:func:`triggerpath.domain.engine.assess`
on the record's partial assessment); the cards only render its ``Recommendation`` with
its statement ids, and doses are checked by :func:`triggerpath.domain.dosing.check_dose`.

How a hook call becomes cards, module by module::

    entrypoints/api/cds_hooks ──► patient_view ──────────┐         (_patient_view)
    (prefetch → Record)      └──► order_hook ──┐          │         (_order_hooks)
                                  tpi_orders ◄─┘          │         (_drafts)
                                      │                   ▼
                                      ├──► run_engine, course_status (_record)
                                      ├──► safety_cards, 24 h doses (_safety)
                                      ├──► dose_card                (_dose)
                                      ▼
                                   Cards.add ──► card JSON + trace  (_builder, _model)

    FHIR server too slow ──► source_unavailable                   (_unavailable)

Hooks:

- ``patient-view``: TPI status (eligible or not and why, what the record lacks),
  course status and reassessment due, local anesthetic given in the last 24 h,
  and one card per contraindication or bleeding-risk caution.
- ``order-select`` / ``order-sign``: for TPI orders in ``draftOrders`` (a
  ServiceRequest coded CPT 20552/20553, or a local-anesthetic MedicationRequest
  that is not topical), cards for red flags, contraindications, bleeding-risk drugs,
  non-myofascial diagnoses (radiculopathy -> epidural steroid injection referral),
  course limits, the dose check, and physical therapy alongside (S000.25). Every
  card names the draft orders it concerns.

Every card has a deterministic ``uuid`` (hook instance + card code + orders), a summary
under 140 characters, ``source`` naming TriggerPath and the knowledge version,
override reasons, a link to the TriggerPath web view, and an evaluation trace in
``extension["org.triggerpath.trace"]``: rule, verdict, statement ids, the EHR
records behind it and what was missing.

To add a card: write a ``_<name>_card(b, rec)`` function building a ``CardText`` and a
``Why`` in the module of its hook (or ``_safety`` when every hook shows it) and call it
from the hook's card list.
"""

from triggerpath.services.cds._drafts import Evaluation, TpiOrder, tpi_orders
from triggerpath.services.cds._model import (
    HOOKS,
    ORDERS_KEY,
    OVERRIDE_REASONS,
    TRACE_KEY,
    Card,
    CdsOptions,
    Hook,
)
from triggerpath.services.cds._order_hooks import order_hook
from triggerpath.services.cds._patient_view import patient_view
from triggerpath.services.cds._ports import Fhir, Record
from triggerpath.services.cds._record import CourseStatus, course_status
from triggerpath.services.cds._unavailable import source_unavailable

__all__ = [
    "HOOKS",
    "ORDERS_KEY",
    "OVERRIDE_REASONS",
    "TRACE_KEY",
    "Card",
    "CdsOptions",
    "CourseStatus",
    "Evaluation",
    "Fhir",
    "Hook",
    "Record",
    "TpiOrder",
    "course_status",
    "order_hook",
    "patient_view",
    "source_unavailable",
    "tpi_orders",
]
