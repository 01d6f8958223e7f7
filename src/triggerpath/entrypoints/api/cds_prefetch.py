"""CDS Hooks prefetch: the templates TriggerPath asks for, and gathering what was not sent.

Prefetched data is used when sent (keys TriggerPath does not know are ignored); missing
keys are fetched from ``fhirServer`` with the ``fhirAuthorization`` bearer token, all
within one deadline. A source too slow raises :class:`SlowSource` (the router answers an
explanatory card, never a hang); links off the client's FHIR server are never followed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from triggerpath.adapters.fhir_r4.read import bundle_resources
from triggerpath.entrypoints.api.cds_auth import HookError
from triggerpath.errors import InvalidInput
from triggerpath.knowledge.loader import Knowledge

MAX_PAGES = 10
PID = "{{context.patientId}}"
LATEST = "&_sort=-date&_count=1"


@dataclass(frozen=True)
class PrefetchKey:
    key: str
    template: str
    resource_type: str
    required: bool


#: key, resource type, query after ``?patient={{context.patientId}}`` (``{vs}`` = value set
#: codes), required. The Patient itself is read by id.
_SEARCHES: tuple[tuple[str, str, str, bool], ...] = (
    ("conditions", "Condition", "&clinical-status=active,recurrence,relapse", True),
    ("medicationRequests", "MedicationRequest", "&status=active,on-hold", True),
    ("allergies", "AllergyIntolerance", "", True),
    ("medicationStatements", "MedicationStatement", "&status=active,on-hold,intended", False),
    ("weight", "Observation", "&code={body_weight}" + LATEST, False),
    ("height", "Observation", "&code=http://loinc.org|8302-2" + LATEST, False),
    ("pain", "Observation", "&code={pain_severity}" + LATEST, False),
    ("pregnancy", "Observation", "&code={pregnancy_status}" + LATEST, False),
    ("tpiProcedures", "Procedure", "&code={tpi_procedure}", False),
    (
        "anestheticAdministrations",
        "MedicationAdministration",
        "&_sort=-effective-time&_count=50",
        False,
    ),
    ("serviceRequests", "ServiceRequest", "&status=active,on-hold", False),
)
_VALUE_SETS = ("body_weight", "pain_severity", "pregnancy_status", "tpi_procedure")


def prefetch_keys(kb: Knowledge) -> list[PrefetchKey]:
    """The prefetch templates; observation and procedure codes come from the value sets."""
    codes = {
        vs: ",".join(f"{s.url}|{c.code}" for s, c in kb.valuesets.codes(vs)) for vs in _VALUE_SETS
    }
    keys = [PrefetchKey("patient", f"Patient/{PID}", "Patient", True)]
    for key, rtype, query, required in _SEARCHES:
        keys.append(
            PrefetchKey(key, f"{rtype}?patient={PID}{query.format(**codes)}", rtype, required)
        )
    return keys


SERVICE_TEXT: dict[str, tuple[str, str]] = {
    "patient-view": (
        "TriggerPath: TPI status",
        "Trigger point injection status when a chart opens: eligible or not and why, course "
        "status, reassessment due, local anesthetic given in the last 24 hours, contraindications "
        "and bleeding-risk drugs, with statement ids.",
    ),
    "order-select": (
        "TriggerPath: TPI order check (select)",
        "Checks a trigger point injection order (CPT 20552/20553 or a local anesthetic) as it is "
        "selected: red flags, contraindications, bleeding risk, non-myofascial diagnoses with "
        "the pathway to refer to, course limits, dose limits and physical therapy alongside.",
    ),
    "order-sign": (
        "TriggerPath: TPI order check (sign)",
        "The same checks as order-select on every trigger point injection order about to be "
        "signed, each card tied to the draft orders it concerns.",
    ),
}


def resolve_template(template: str, context: Mapping[str, Any]) -> str | None:
    """A prefetch template with ``{{context.x}}`` filled in (None when a token is missing)."""
    out = template
    while "{{" in out:
        start = out.index("{{")
        end = out.index("}}", start)
        token = out[start + 2 : end].strip()
        value = (
            context.get(token.removeprefix("context.")) if token.startswith("context.") else None
        )
        if not isinstance(value, str) or not value:
            return None
        out = out[:start] + value + out[end + 2 :]
    return out


class SlowSource(Exception):
    pass


def _next_link(bundle: Mapping[str, Any]) -> str | None:
    for link in bundle.get("link") or []:
        if isinstance(link, dict) and link.get("relation") == "next":
            url = link.get("url")
            return url if isinstance(url, str) else None
    return None


def sent_prefetch(body: Mapping[str, Any], keys: Sequence[PrefetchKey]) -> dict[str, Any]:
    """The prefetch values sent for TriggerPath's keys (unknown keys ignored; an
    OperationOutcome means the client could not prefetch it, so it is fetched)."""
    prefetch = body.get("prefetch")
    if not isinstance(prefetch, dict):
        return {}
    got: dict[str, Any] = {}
    for k in keys:
        if k.key not in prefetch:
            continue
        value = prefetch[k.key]
        if isinstance(value, dict) and value.get("resourceType") == "OperationOutcome":
            continue
        got[k.key] = value
    return got


def _auth_headers(body: Mapping[str, Any]) -> dict[str, str]:
    headers = {"Accept": "application/fhir+json"}
    auth = body.get("fhirAuthorization")
    if isinstance(auth, dict) and isinstance(auth.get("access_token"), str):
        headers["Authorization"] = f"Bearer {auth['access_token']}"
    return headers


class Gatherer:
    """Prefetch first, then the FHIR server for what is missing, within one deadline."""

    def __init__(
        self,
        timeout_seconds: float,
        allowlist: Sequence[str],
        http: Callable[[], httpx.AsyncClient],
    ) -> None:
        self.timeout = timeout_seconds
        self.allowlist = tuple(allowlist)
        self._http = http

    async def _get_all(self, url: str, headers: Mapping[str, str], base: str) -> Any:
        """One search, following ``next`` pages on the same server (at most 10)."""
        resp = await self._http().get(url, headers=dict(headers))
        if resp.status_code == 404 and "?" not in url:
            return None
        resp.raise_for_status()
        data = resp.json()
        if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
            return data
        entries = list(data.get("entry") or [])
        nxt, pages = _next_link(data), 1
        while nxt and pages < MAX_PAGES and nxt.startswith(base):
            resp = await self._http().get(nxt, headers=dict(headers))
            resp.raise_for_status()
            page = resp.json()
            entries.extend(page.get("entry") or [] if isinstance(page, dict) else [])
            nxt = _next_link(page) if isinstance(page, dict) else None
            pages += 1
        return {**data, "entry": entries}

    async def gather(
        self,
        body: Mapping[str, Any],
        keys: Sequence[PrefetchKey],
        before_fetch: Callable[[], Awaitable[object]] | None = None,
    ) -> tuple[dict[str, Any], list[str]]:
        """Values by prefetch key (None = no data) and the keys that could not be had;
        ``before_fetch`` is awaited before anything is fetched (it may raise to stop it)."""
        got = sent_prefetch(body, keys)
        todo = [k for k in keys if k.key not in got]
        server = body.get("fhirServer")
        if not todo:
            return got, []
        if not isinstance(server, str) or not server:
            return got, [k.key for k in todo]
        if self.allowlist and not any(server.startswith(a) for a in self.allowlist):
            raise HookError(412, "Precondition Failed", f"fhirServer {server} is not allowed")
        if before_fetch is not None:
            await before_fetch()
        failed = await self._fetch(body, server, todo, got)
        return got, failed

    async def _fetch(
        self, body: Mapping[str, Any], server: str, todo: Sequence[PrefetchKey], got: dict[str, Any]
    ) -> list[str]:
        """Fetch the missing keys concurrently into ``got``; the keys that failed."""
        context = body.get("context") if isinstance(body.get("context"), dict) else {}
        assert isinstance(context, dict)
        headers = _auth_headers(body)
        base = server.rstrip("/") + "/"
        failed: list[str] = []

        async def one(k: PrefetchKey) -> None:
            path = resolve_template(k.template, context)
            if path is None:
                failed.append(k.key)
                return
            try:
                got[k.key] = await self._get_all(base + path, headers, base)
            except (httpx.HTTPStatusError, httpx.TransportError, ValueError):
                failed.append(k.key)

        try:
            async with asyncio.timeout(self.timeout):
                await asyncio.gather(*(one(k) for k in todo))
        except TimeoutError:
            raise SlowSource(
                f"The EHR's FHIR server ({server}) did not answer within {self.timeout:g} s."
            ) from None
        return failed


def resources_of(value: Any, key: str) -> list[Any]:
    """The resources of a prefetch value: a Bundle, one resource, or null."""
    if value is None:
        return []
    if isinstance(value, dict) and value.get("resourceType") == "Bundle":
        return bundle_resources(value, f"prefetch.{key}")
    if isinstance(value, dict) and "resourceType" in value:
        return [value]
    raise InvalidInput.single(f"prefetch.{key}", "expected a FHIR resource, a Bundle or null")
