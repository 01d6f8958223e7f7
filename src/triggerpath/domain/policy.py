"""Clinic policy: the switches a clinic may set, kept apart from clinical content.

The knowledge base says what the sources say; the policy says how this clinic
applies it where the sources leave room (for example how long a conservative
trial must last before it counts as tried). Defaults are the conservative
reading of the sources and are named in each field's description.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from triggerpath.domain.numbers import Quantity
from triggerpath.knowledge.injectates import DoseLimitPolicy, WeightBasis
from triggerpath.knowledge.instruments import RfaRule

#: How a patient is identified (domain/identity.py applies it).
IdentifierPolicy = Literal["two_identifiers", "minimal"]
PaperSize = Literal["letter", "a4"]


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_conservative_trial_weeks: float = Field(
        default=2.0,
        ge=0,
        le=52,
        description=(
            "Weeks a conservative treatment must have run before an inadequate response counts "
            "as a failed trial. Default 2: the earliest reassessment point of S003.12 (2-4 weeks)."
        ),
    )
    # ---- treatment course (issue 4)
    min_relief_days: int = Field(
        default=14,
        ge=1,
        le=365,
        description=(
            "Fewest days a session's relief must last to count as a response; shorter relief is "
            "classed relief_too_short. Default 14: relief should last weeks to months (S000.19) "
            "and reach the first reassessment point, 2 weeks after therapy starts (S003.12)."
        ),
    )
    long_term_course_weeks: float = Field(
        default=12.0,
        gt=0,
        le=104,
        description=(
            "Weeks from the first to the latest TPI after which repeated TPIs are flagged as "
            "long-term management (S000.01, S000.02). The sources give no cut-off; default 12 "
            "(three months): a TriggerPath choice, past which temporary relief has become a regime."
        ),
    )
    rfa_rule: RfaRule = Field(
        default="seed_50",
        description=(
            "Medial branch block result needed before radiofrequency ablation. 'seed_50' (default, "
            "S000.32): every recorded block gives more than 50% relief. 'dual_block_80': two "
            "blocks each with at least 80% relief, as some payers (e.g. Medicare LCDs) require."
        ),
    )
    # ---- local anesthetic dose limits (issue 3)
    dose_limit_source: DoseLimitPolicy = Field(
        default="conservative",
        description=(
            "Which source's dose limits apply where the sources differ: 'conservative' (default: "
            "the lowest mg/kg and the lowest cap any source gives), 'fda_label', 'uk_bnf' or "
            "'textbook'. Where the chosen source is silent the most conservative other value is "
            "used. Sources and values: triggerpath knowledge injectates."
        ),
    )
    dose_weight_basis: WeightBasis = Field(
        default="lean",
        description=(
            "Weight used for mg/kg limits: 'lean' (default, Janmahasatian; the lowest of the three "
            "for almost every adult), 'ideal' (Devine) or 'actual'. Never above the actual weight; "
            "without height (or sex for lean) the actual weight is used and the result says so."
        ),
    )
    dose_caution_fraction: Quantity = Field(
        default=Decimal("0.8"),
        gt=0,
        le=1,
        description=(
            "Fraction of the combined maximum above which a dose check is 'caution' (default 0.8); "
            "above 1 it is 'exceeds' and blocks."
        ),
    )
    prior_dose_window_hours: Quantity = Field(
        default=Decimal(24),
        gt=0,
        le=24,
        description=(
            "Earlier local anesthetic doses given at least this many hours ago (their "
            "hours_ago recorded) no longer count towards the additive sum. Default 24: every "
            "dose of the 24-hour ledger counts, and a dose without hours_ago always counts."
        ),
    )
    allow_non_marketed_strength: bool = Field(
        default=False,
        description=(
            "Accept local anesthetic strengths that are not marketed (compounded dilutions). "
            "Default false: a strength must be one supplied for infiltration."
        ),
    )
    # ---- record integrity (issue 11)
    clock_skew_minutes: int = Field(
        default=10,
        ge=0,
        le=120,
        description=(
            "How far in the future a recorded clinical time may lie (clock differences between "
            "devices). Default 10 minutes; planned dates are exempt."
        ),
    )
    # ---- EHR data (FHIR R4 adapter, issue 6)
    ehr_max_weight_age_days: int = Field(
        default=365,
        ge=1,
        le=3650,
        description=(
            "Oldest body weight in the EHR that counts as the patient's weight for dose limits. "
            "Default 365 days; an older weight is reported as missing, never used (S000.28)."
        ),
    )
    ehr_max_pain_score_age_days: int = Field(
        default=30,
        ge=1,
        le=3650,
        description=(
            "Oldest pain score in the EHR that counts as the pain now (pain.nrs). Default 30 days, "
            "about the 2-4 week reassessment interval of S003.12; older scores are only shown."
        ),
    )
    ehr_max_pregnancy_status_age_days: int = Field(
        default=7,
        ge=0,
        le=365,
        description=(
            "Oldest 'not pregnant' status (LOINC 82810-3) that counts as not pregnant now. "
            "Default 7 days; an older negative status leaves pregnancy unknown (S002.16). "
            "A pregnant status or an active pregnancy condition always counts."
        ),
    )
    ehr_course_window_days: int = Field(
        default=365,
        ge=1,
        le=3650,
        description=(
            "Earlier TPIs (CPT 20552/20553) within this many days count towards the current "
            "course when checked against the expected sessions of S000.20. Default 365."
        ),
    )
    # ---- patient identity and documents (issue 17)
    patient_identifiers: IdentifierPolicy = Field(
        default="two_identifiers",
        description=(
            "'two_identifiers' (default): every patient write needs family name, given name(s) "
            "and date of birth, shown with the MRN on every screen and document (The Joint "
            "Commission NPSG.01.01.01). 'minimal': only MRN and sex are required, for a clinic "
            "that embeds TriggerPath in an EHR holding the patient's identity."
        ),
    )
    paper_size: PaperSize = Field(
        default="letter",
        description=(
            "Paper of every generated document: 'letter' (default, US Letter 8.5 x 11 in) or "
            "'a4' (210 x 297 mm)."
        ),
    )


DEFAULT_POLICY = Policy()
