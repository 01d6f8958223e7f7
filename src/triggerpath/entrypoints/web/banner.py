"""The patient banner on every patient page (macros.html ``patient_bar``).

:func:`page` calls :func:`with_banner`: wherever a page is about one patient (its context
holds ``pd``, the patient's data), ``pd`` becomes the :class:`~triggerpath.services.banner.
PatientBanner` (name, date of birth and age, MRN, sex, allergy and contraindication flags of
the latest assessment), so every template that shows ``pd`` shows the banner without a
change of its own. The flags come from the episode's assessments (context ``b``) or, on the
patient page, from ``banner_assessments``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from triggerpath.services import banner, clinical
from triggerpath.services.episodes import Bundle
from triggerpath.services.payloads import PatientData

if TYPE_CHECKING:
    from triggerpath.entrypoints.web.support import WebSession


def with_banner(web: WebSession | None, context: dict[str, Any]) -> dict[str, Any]:
    pd = context.get("pd")
    if web is None or not isinstance(pd, PatientData):
        return context
    b = context.get("b")
    assessments = b.assessments if isinstance(b, Bundle) else context.get("banner_assessments", [])
    with web.state.uow_factory() as uow:
        _, policy = clinical.current_policy(uow)
    shown = banner.banner_of(
        pd, assessments, web.state.kb, as_of=web.today, policy=policy.patient_identifiers
    )
    return {**context, "pd": shown}
