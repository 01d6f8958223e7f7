"""The FHIR R4 adapter behind the CDS services' :class:`~triggerpath.services.cds.Fhir` port."""

from __future__ import annotations

from triggerpath.adapters.fhir_r4.read import bundle_resources
from triggerpath.adapters.fhir_r4.write import referral_request


class FhirR4:
    """Bundle reading and referral writing from :mod:`triggerpath.adapters.fhir_r4`."""

    bundle_resources = staticmethod(bundle_resources)
    referral_request = staticmethod(referral_request)


#: The one instance the composition root hands to the CDS services.
FHIR_R4 = FhirR4()
