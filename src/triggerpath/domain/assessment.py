"""What a clinician records about a back-pain patient: the engine's input.

Every clinical finding is *three-valued*: ``true`` (present), ``false``
(looked for and absent) or ``null``/omitted (not examined). The engine never
guesses an unexamined finding; it lists it under ``needs`` instead.

Fields that hold knowledge-base ids (muscles, conservative-care modalities) are
checked against the knowledge base by :func:`triggerpath.domain.validation.parse_assessment`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from triggerpath.domain.numbers import Quantity
from triggerpath.knowledge.schema import Region

Finding = Annotated[
    bool | None, Field(description="true = present, false = absent, null = not examined")
]
TestResult = Annotated[
    bool,
    Field(
        description="true only when the test was done and positive; false when negative or not done"
    ),
]


def finding(description: str) -> Any:
    """A :data:`Finding` field with what it means: not examined (null) until recorded."""
    return Field(default=None, description=description)


class Model(BaseModel):
    """Input models are strict: a string is not a number, ``1`` is not ``true``."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Patient(Model):
    age_years: int = Field(ge=0, le=120, description="age in completed years")
    sex: Literal["female", "male", "other", "unknown"]
    weight_kg: Quantity | None = Field(
        default=None, gt=0, le=400, description="body weight in kg (needed for dose checks)"
    )
    height_cm: Quantity | None = Field(default=None, ge=50, le=250)
    pregnant: Finding = finding("pregnancy status; for males treated as false")


class Pain(Model):
    duration_weeks: float | None = Field(
        default=None, ge=0, le=5200, description="weeks since onset of this episode"
    )
    nrs: int | None = Field(default=None, ge=0, le=10, description="pain now, numeric rating 0-10")
    constant: Finding = finding("pain is constant rather than intermittent")
    daily_activity_impact: Literal["none", "mild", "moderate", "severe"] | None = None
    widespread: Finding = finding("pain widespread beyond the back regions")
    headache: Finding = finding("associated tension-type headache")


Cause = Literal["acute_trauma", "repetitive_microtrauma", "posture", "overuse", "unknown"]
Side = Literal["left", "right", "bilateral"]


class TriggerPointFinding(Model):
    """One examined trigger point, as palpated."""

    muscle: str = Field(
        max_length=60,
        description="muscle id from the knowledge base (triggerpath knowledge muscles)",
    )
    side: Side
    taut_band: Finding = None
    hypersensitive_spot: Finding = finding("tender nodule in the taut band")
    recognised_pain: Finding = finding("pressure reproduces the patient's pain")
    referred_pain: Finding = finding("pressure refers pain to the muscle's zone")
    local_twitch_response: Finding = None
    reduced_rom: Finding = finding("range of motion limited by the pain")


class Radicular(Model):
    pain_below_knee: Finding = finding("leg pain radiating below the knee")
    dermatomal_pain: Finding = finding("pain or paraesthesia in a dermatome")
    neurological_deficit: Finding = finding("weakness, reflex or sensory loss")
    positive_straight_leg_raise: Finding = finding("lumbar regions only")
    imaging_root_compression: TestResult = False


class Facet(Model):
    extension_rotation_pain: Finding = finding("axial pain on extension-rotation")
    facet_tenderness: Finding = finding("paravertebral tenderness over the facets")
    medial_branch_block_positive: TestResult = False


class Discogenic(Model):
    midline_pain_worse_flexion_sitting: Finding = None
    concordant_disc_imaging: TestResult = False
    discography_positive: TestResult = False


class Sacroiliac(Model):
    pain_over_sacroiliac_joint: Finding = finding("pain mapped over the SI joint")
    provocation_tests_positive: int | None = Field(
        default=None,
        ge=0,
        le=5,
        description="how many of the 5 Laslett provocation tests are positive",
    )
    sacroiliac_block_positive: TestResult = False


class Structural(Model):
    disc_herniation: Finding = finding("symptomatic disc herniation")
    spinal_stenosis: Finding = None
    instability: Finding = finding("spondylolisthesis or segmental instability")


class UpperBackMimics(Model):
    cervical_disc: Finding = None
    rotator_cuff: Finding = None
    shoulder_impingement: Finding = None
    thoracic_outlet: Finding = None
    visceral_referral: Finding = finding("cardiac, pulmonary, GI or renal source")


class Systemic(Model):
    fibromyalgia: Finding = None
    inflammatory_arthritis: Finding = None


class PainGenerators(Model):
    radicular: Radicular = Radicular()
    facet: Facet = Facet()
    discogenic: Discogenic = Discogenic()
    sacroiliac: Sacroiliac = Sacroiliac()
    structural: Structural = Structural()
    upper_back_mimics: UpperBackMimics = UpperBackMimics()
    systemic: Systemic = Systemic()


class RedFlags(Model):
    """Back-pain red flags (NICE NG59 and ACP/APS 2007; S002.12)."""

    cauda_equina: Finding = finding(
        "saddle anaesthesia, new bladder/bowel dysfunction, bilateral leg signs"
    )
    suspected_malignancy: Finding = finding(
        "history of cancer, unexplained weight loss, night pain"
    )
    suspected_infection: Finding = finding(
        "fever, IV drug use, immunosuppression, recent spinal procedure"
    )
    suspected_fracture: Finding = finding("significant trauma, osteoporosis, long-term steroids")
    progressive_neurological_deficit: Finding = None


class Contraindications(Model):
    bleeding_disorder: Finding = finding("coagulopathy or thrombocytopenia")
    injectate_allergy: Finding = finding("allergy to the local anesthetic class")
    preservative_allergy: Finding = finding("allergy to parabens or other preservatives")
    infection_at_site: Finding = None
    latex_allergy: Finding = None


Response = Literal["none", "partial", "good", "not_tolerated"]


class ConservativeCare(Model):
    modality: str = Field(
        max_length=60,
        description="modality id from the knowledge base (triggerpath knowledge pathway)",
    )
    weeks: float | None = Field(default=None, ge=0, le=5200)
    response: Response | None = None


class Medication(Model):
    name: str = Field(min_length=1, max_length=200)
    drug_class: str | None = Field(
        default=None,
        max_length=60,
        description="class id (e.g. anticoagulant); looked up from the name when omitted "
        "(a name recognised as an anticoagulant or antiplatelet still counts)",
    )
    rxnorm: str | None = Field(
        default=None,
        pattern=r"^[0-9]{1,10}$",
        description="RxNorm code (RXCUI); wins over the name when the value sets hold it",
    )
    active: bool = True


class Assessment(Model):
    """A clinician's structured findings for one back-pain episode."""

    patient: Patient
    regions: list[Region] = Field(min_length=1)
    pain: Pain = Pain()
    causes: list[Cause] = Field(default_factory=list, max_length=10)
    trigger_points: list[TriggerPointFinding] = Field(default_factory=list, max_length=40)
    pain_generators: PainGenerators = PainGenerators()
    red_flags: RedFlags = RedFlags()
    contraindications: Contraindications = Contraindications()
    conservative_care: list[ConservativeCare] | None = Field(
        default=None, max_length=40, description="null = not recorded; [] = none tried yet"
    )
    medications: list[Medication] | None = Field(
        default=None,
        max_length=2000,  # EHR histories list hundreds (stopped ones included)
        description="current medications; null = not reviewed; [] = none",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Assessment:
        if self.patient.sex == "male" and self.patient.pregnant:
            raise ValueError("patient.pregnant: cannot be true when patient.sex is male")
        if len(set(self.regions)) != len(self.regions):
            raise ValueError("regions: each region once")
        return self
