"""The course computed from stored records (``GET /api/v1/episodes/{id}/course``).

Sessions and follow-up outcomes are recorded through the API as the web app records them
(pre-injection NRS on the session day, follow-up NRS and relief days after it, linked to
the session); the course engine then classifies the response with the IMMPACT thresholds
(Dworkin 2008: >= 30% moderately important, >= 50% substantial).
"""

from __future__ import annotations

from typing import Any

from .conftest import Service


def _outcome(
    svc: Service,
    episode: str,
    session: str,
    day: str,
    instrument: str,
    value: float,
) -> None:
    body: dict[str, Any] = {
        "measured_on": day,
        "instrument": instrument,
        "value": value,
        "session_id": session,
    }
    svc.ok(svc.post(f"/api/v1/episodes/{episode}/outcomes", json=body))


def test_course_needs_an_assessment_first(service: Service) -> None:
    episode = service.episode(service.patient()["id"])
    r = service.get(f"/api/v1/episodes/{episode['id']}/course")
    assert r.status_code == 409
    assert "assessment" in r.json()["detail"]


def test_course_from_stored_sessions_and_follow_ups(service: Service) -> None:
    episode = service.episode(service.patient()["id"])["id"]
    service.assessment(episode)
    session = service.session(episode, performed_at="2026-10-01T10:00:00+00:00")["id"]
    _outcome(service, episode, session, "2026-10-01", "nrs", 8)  # before the injection
    _outcome(service, episode, session, "2026-10-15", "nrs", 3)  # follow-up: 62.5% less
    _outcome(service, episode, session, "2026-10-15", "relief_days", 14)
    r = service.get(f"/api/v1/episodes/{episode}/course", params={"as_of": "2026-11-21"})
    assert r.status_code == 200, r.text
    report = r.json()
    assert [s["pre_nrs"] for s in report["sessions"]] == [8]
    assert [s["post_nrs"] for s in report["sessions"]] == [3]
    assert report["response"]["classification"] == "responder"  # >= 50%: substantial
    assert report["as_of"] == "2026-11-21"


def test_course_as_of_must_be_a_calendar_date(service: Service) -> None:
    """A bare number is not a date (pydantic alone would read it as a Unix timestamp);
    schemathesis found it accepted with 200."""
    episode = service.episode(service.patient()["id"])["id"]
    for bad in ("0", "1700000000", "21/11/2026"):
        r = service.get(f"/api/v1/episodes/{episode}/course", params={"as_of": bad})
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["errors"][0]["field"] == "query.as_of"
