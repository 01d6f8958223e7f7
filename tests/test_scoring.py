"""Outcome instruments scored by their published rules, each checked against its source."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from triggerpath.domain.scoring import parse_answers, score
from triggerpath.errors import InvalidInput
from triggerpath.knowledge import Knowledge


def problems(exc: pytest.ExceptionInfo[InvalidInput]) -> dict[str, str]:
    return {p.field: p.reason for p in exc.value.problems}


# --------------------------------------------------------------------------- NRS
@pytest.mark.parametrize(
    ("nrs", "band"),
    [(0, "none"), (1, "mild"), (4, "mild"), (5, "moderate"), (6, "moderate"), (7, "severe"),
     (10, "severe")],
)  # fmt: skip
def test_nrs_bands_follow_serlin_1995(nrs: int, band: str, kb: Knowledge) -> None:
    """Serlin et al. Pain 1995;61:277-84: 1-4 mild, 5-6 moderate, 7-10 severe."""
    result = score("nrs", [nrs], kb)
    assert result.score == nrs
    assert result.band == band


def test_nrs_refuses_out_of_range_and_missing(kb: Knowledge) -> None:
    with pytest.raises(InvalidInput) as exc:
        score("nrs", [11], kb)
    assert list(problems(exc)) == ["answers[0]"]
    assert problems(exc)["answers[0]"].startswith("11 is out of range 0-10 (item 1:")
    with pytest.raises(InvalidInput) as exc:
        score("nrs", [None], kb)
    assert "answers[0]" in problems(exc)


# --------------------------------------------------------------------------- PEG
def test_peg_is_the_mean_of_the_three_items(kb: Knowledge) -> None:
    """Krebs EE et al. J Gen Intern Med 2009;24:733-8: PEG = mean of P, E and G (0-10)."""
    assert score("peg", [7, 5, 6], kb).score == 6.0
    assert score("peg", [5, 4, 4], kb).score == pytest.approx(13 / 3, abs=0.005)
    assert score("peg", [0, 0, 0], kb).score == 0
    assert score("peg", [10, 10, 10], kb).score == 10
    result = score("peg", [7, 5, 6], kb)
    assert result.band is None  # Krebs 2009 publishes no severity bands
    assert any("Krebs" in r for r in result.references)


def test_peg_refuses_a_missing_item(kb: Knowledge) -> None:
    with pytest.raises(InvalidInput) as exc:
        score("peg", [7, None, 6], kb)
    assert list(problems(exc)) == ["answers[1]"]
    assert "missing" in problems(exc)["answers[1]"]


# --------------------------------------------------------------------------- ODI
def test_odi_fairbank_worked_example_all_sections(kb: Knowledge) -> None:
    """Fairbank & Pynsent, Spine 2000;25:2940-52: 16 points of 50 -> 32%."""
    answers = [2, 2, 2, 2, 2, 2, 2, 1, 1, 0]  # total 16
    result = score("odi", answers, kb)
    assert result.raw == 16 and result.raw_max == 50
    assert result.score == 32.0
    assert result.band == "moderate"  # 21-40% moderate disability


def test_odi_fairbank_worked_example_one_section_missed(kb: Knowledge) -> None:
    """Fairbank & Pynsent 2000: one section missed, 16 points over 45 -> 35.5% (35.56 exact)."""
    answers = [2, 2, 2, 2, 2, 2, 2, 1, 1, None]
    result = score("odi", answers, kb)
    assert result.answered == 9 and result.missing_items == [10]
    assert result.score == pytest.approx(16 / 45 * 100, abs=0.005)
    assert result.band == "moderate"


def test_odi_refuses_two_missing_sections(kb: Knowledge) -> None:
    with pytest.raises(InvalidInput) as exc:
        score("odi", [2, 2, 2, 2, 2, 2, 2, 1, None, None], kb)
    reason = problems(exc)["answers"]
    assert "2 items missing" in reason and "items 9, 10" in reason


@pytest.mark.parametrize(
    ("total", "band"),
    [(0, "minimal"), (10, "minimal"), (11, "moderate"), (20, "moderate"), (21, "severe"),
     (30, "severe"), (31, "crippled"), (40, "crippled"), (41, "bed_bound"), (50, "bed_bound")],
)  # fmt: skip
def test_odi_band_edges(total: int, band: str, kb: Knowledge) -> None:
    """Fairbank & Pynsent 2000 bands: 0-20 minimal, 21-40 moderate, 41-60 severe,
    61-80 crippled, 81-100 bed-bound (all ten sections: % = 2 x total)."""
    answers = [min(5, max(0, total - 5 * i)) for i in range(10)]
    assert sum(answers) == total
    result = score("odi", answers, kb)
    assert result.score == 2 * total
    assert result.band == band


def test_odi_band_edge_with_one_section_missing(kb: Knowledge) -> None:
    # 9/45 = 20.0% stays minimal; 10/45 = 22.2% is moderate (Fairbank & Pynsent 2000)
    assert score("odi", [1, 1, 1, 1, 1, 1, 1, 1, 1, None], kb).band == "minimal"
    assert score("odi", [2, 1, 1, 1, 1, 1, 1, 1, 1, None], kb).band == "moderate"


def test_odi_out_of_range_names_the_answer(kb: Knowledge) -> None:
    with pytest.raises(InvalidInput) as exc:
        score("odi", [0, 0, 0, 7, 0, 0, 0, 0, 0, 6], kb)
    found = problems(exc)
    assert found["answers[3]"].startswith("7 is out of range 0-5")
    assert found["answers[9]"].startswith("6 is out of range 0-5")


# --------------------------------------------------------------------------- NDI
@pytest.mark.parametrize(
    ("total", "band"),
    [(0, "none"), (4, "none"), (5, "mild"), (14, "mild"), (15, "moderate"), (24, "moderate"),
     (25, "severe"), (34, "severe"), (35, "complete"), (50, "complete")],
)  # fmt: skip
def test_ndi_bands_on_the_raw_score(total: int, band: str, kb: Knowledge) -> None:
    """Vernon & Mior, J Manipulative Physiol Ther 1991;14:409-15: raw 0-50; 0-4 none,
    5-14 mild, 15-24 moderate, 25-34 severe, over 34 complete; percentage = raw x 2."""
    answers = [min(5, max(0, total - 5 * i)) for i in range(10)]
    result = score("ndi", answers, kb)
    assert result.raw == total
    assert result.score == 2 * total
    assert result.band == band


def test_ndi_one_missing_item_prorates(kb: Knowledge) -> None:
    # 4 points over 9 items: 8.9%, prorated raw 4.4 -> still 'none' (band edge 5)
    result = score("ndi", [1, 1, 1, 1, None, 0, 0, 0, 0, 0], kb)
    assert result.score == pytest.approx(4 / 45 * 100, abs=0.005)
    assert result.band_value == pytest.approx(4.44, abs=0.01)
    assert result.band == "none"
    result = score("ndi", [1, 1, 1, 1, None, 1, 0, 0, 0, 0], kb)  # 5/45 -> prorated 5.6
    assert result.band == "mild"
    with pytest.raises(InvalidInput):
        score("ndi", [1, 1, 1, 1, None, None, 0, 0, 0, 0], kb)


# --------------------------------------------------------------------------- STarT Back
@pytest.mark.parametrize(
    ("answers", "total", "psychosocial", "group"),
    [
        ([0, 0, 0, 0, 0, 0, 0, 0, 0], 0, 0, "low"),
        ([1, 1, 1, 0, 0, 0, 0, 0, 2], 3, 0, "low"),  # 'moderately' bothersome scores 0
        ([0, 0, 0, 0, 1, 1, 1, 0, 0], 3, 3, "low"),  # total <= 3 is low whatever the subscale
        ([1, 1, 1, 1, 0, 0, 0, 0, 0], 4, 0, "medium"),
        ([1, 1, 1, 1, 1, 1, 1, 0, 2], 7, 3, "medium"),  # subscale 3: not high
        ([0, 0, 0, 0, 1, 1, 1, 0, 3], 4, 4, "high"),  # 'very much' scores 1
        ([0, 0, 0, 0, 1, 1, 1, 1, 0], 4, 4, "high"),
        ([1, 1, 1, 1, 1, 1, 1, 1, 4], 9, 5, "high"),  # 'extremely' scores 1
    ],
)
def test_startback_keele_scoring(
    answers: list[int], total: int, psychosocial: int, group: str, kb: Knowledge
) -> None:
    """Hill JC et al. Arthritis Rheum 2008;59:632-41: total 0-3 low; total >= 4 with
    psychosocial (items 5-9) <= 3 medium, >= 4 high; item 9 positive only for 'very much'
    or 'extremely'."""
    result = score("startback", answers, kb)
    assert result.score == total == result.raw
    assert result.subscales == {"psychosocial": psychosocial}
    assert result.band == group
    assert result.matched_care


def test_startback_ranges_and_missing(kb: Knowledge) -> None:
    with pytest.raises(InvalidInput) as exc:
        score("startback", [2, 0, 0, 0, 0, 0, 0, 0, 5], kb)
    found = problems(exc)
    assert found["answers[0]"].startswith("2 is out of range 0-1")
    assert found["answers[8]"].startswith("5 is out of range 0-4")
    with pytest.raises(InvalidInput) as exc:
        score("startback", [1, 0, 0, 0, None, 0, 0, 0, 0], kb)
    assert "answers[4]" in problems(exc)


# --------------------------------------------------------------------------- input
def test_parse_answers_empty_field_is_missing() -> None:
    assert parse_answers("2,2,,1") == [2, 2, None, 1]
    assert parse_answers(" 3 , 4,5 ") == [3, 4, 5]
    with pytest.raises(InvalidInput) as exc:
        parse_answers("1,two,3")
    assert problems(exc) == {"answers[1]": "'two' is not a whole number"}


def test_wrong_number_of_answers_and_unknown_instrument(kb: Knowledge) -> None:
    with pytest.raises(InvalidInput) as exc:
        score("odi", [1, 2, 3], kb)
    assert "odi has 10 items, got 3 answers" in problems(exc)["answers"]
    with pytest.raises(InvalidInput) as exc:
        score("sf36", [1], kb)
    assert "INSTRUMENT" in problems(exc)


def test_every_instrument_names_its_publication(kb: Knowledge) -> None:
    expected = {"peg": "Krebs", "odi": "Fairbank", "ndi": "Vernon", "startback": "Hill"}
    for inst in kb.instruments.instruments:
        assert inst.references, inst.id
        if inst.id in expected:
            assert any(expected[inst.id] in r for r in inst.references), inst.id


# --------------------------------------------------------------------------- properties
ODI_ANSWERS = st.lists(st.integers(0, 5), min_size=10, max_size=10)


@settings(deadline=None, max_examples=200)
@given(answers=ODI_ANSWERS, blank=st.one_of(st.none(), st.integers(0, 9)))
def test_odi_percentage_is_total_over_answered(answers: list[int], blank: int | None) -> None:
    from triggerpath.knowledge import load_knowledge

    kb = load_knowledge()
    given_answers: list[int | None] = list(answers)
    if blank is not None:
        given_answers[blank] = None
    result = score("odi", given_answers, kb)
    answered = [a for a in given_answers if a is not None]
    assert 0 <= result.score <= 100
    assert result.score == pytest.approx(sum(answered) / (5 * len(answered)) * 100, abs=0.005)
    bands = [b.id for b in kb.instruments.instrument("odi").bands]
    # a higher score never lands in a lower band
    worse = [min(5, a + 1) if a is not None else None for a in given_answers]
    assert bands.index(score("odi", worse, kb).band or "") >= bands.index(result.band or "")


@settings(deadline=None, max_examples=200)
@given(
    items=st.lists(st.integers(0, 1), min_size=8, max_size=8),
    bother=st.integers(0, 4),
)
def test_startback_groups_are_consistent(items: list[int], bother: int) -> None:
    from triggerpath.knowledge import load_knowledge

    result = score("startback", [*items, bother], load_knowledge())
    psych = result.subscales["psychosocial"]
    assert result.score == sum(items) + (bother >= 3)
    assert psych == sum(items[4:]) + (bother >= 3)
    if result.band == "high":
        assert psych >= 4 and result.score >= 4
    elif result.band == "medium":
        assert result.score >= 4 and psych <= 3
    else:
        assert result.score <= 3
