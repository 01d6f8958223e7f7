"""Hypothesis strategies that generate schema-valid assessments from the knowledge base."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from triggerpath.knowledge import Knowledge, load_knowledge

KB: Knowledge = load_knowledge()
tri = st.sampled_from([True, False, None])


def finding_map(keys: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=dict.fromkeys(keys, tri))


trigger_point = st.fixed_dictionaries(
    {
        "muscle": st.sampled_from(sorted(KB.muscles)),
        "side": st.sampled_from(["left", "right", "bilateral"]),
    },
    optional=dict.fromkeys(
        [
            "taut_band",
            "hypersensitive_spot",
            "recognised_pain",
            "referred_pain",
            "local_twitch_response",
            "reduced_rom",
        ],
        tri,
    ),
)

generators = st.fixed_dictionaries(
    {},
    optional={
        "radicular": st.fixed_dictionaries(
            {},
            optional={
                **dict.fromkeys(
                    [
                        "pain_below_knee",
                        "dermatomal_pain",
                        "neurological_deficit",
                        "positive_straight_leg_raise",
                    ],
                    tri,
                ),
                "imaging_root_compression": st.booleans(),
            },
        ),
        "facet": st.fixed_dictionaries(
            {},
            optional={
                "extension_rotation_pain": tri,
                "facet_tenderness": tri,
                "medial_branch_block_positive": st.booleans(),
            },
        ),
        "discogenic": st.fixed_dictionaries(
            {},
            optional={
                "midline_pain_worse_flexion_sitting": tri,
                "concordant_disc_imaging": st.booleans(),
                "discography_positive": st.booleans(),
            },
        ),
        "sacroiliac": st.fixed_dictionaries(
            {},
            optional={
                "pain_over_sacroiliac_joint": tri,
                "provocation_tests_positive": st.one_of(st.none(), st.integers(0, 5)),
                "sacroiliac_block_positive": st.booleans(),
            },
        ),
        "structural": finding_map(["disc_herniation", "spinal_stenosis", "instability"]),
        "upper_back_mimics": finding_map(
            [
                "cervical_disc",
                "rotator_cuff",
                "shoulder_impingement",
                "thoracic_outlet",
                "visceral_referral",
            ]
        ),
        "systemic": finding_map(["fibromyalgia", "inflammatory_arthritis"]),
    },
)

RED_FLAGS = [
    "cauda_equina",
    "suspected_malignancy",
    "suspected_infection",
    "suspected_fracture",
    "progressive_neurological_deficit",
]
CONTRA = [
    "bleeding_disorder",
    "injectate_allergy",
    "preservative_allergy",
    "infection_at_site",
    "latex_allergy",
]

care = st.fixed_dictionaries(
    {"modality": st.sampled_from(sorted(KB.modality_ids))},
    optional={
        "weeks": st.one_of(st.none(), st.floats(0, 200, allow_nan=False)),
        "response": st.sampled_from([None, "none", "partial", "good", "not_tolerated"]),
    },
)
med_names = st.sampled_from(
    [
        "warfarin",
        "apixaban 5 mg",
        "clopidogrel",
        "aspirin",
        "ibuprofen",
        "gabapentin",
        "something else",
    ]
)
medication = st.fixed_dictionaries({"name": med_names}, optional={"active": st.booleans()})


@st.composite
def assessments(draw: st.DrawFn) -> dict[str, Any]:
    sex = draw(st.sampled_from(["female", "male", "other", "unknown"]))
    patient: dict[str, Any] = {"age_years": draw(st.integers(0, 120)), "sex": sex}
    if draw(st.booleans()):
        patient["weight_kg"] = draw(st.decimals("0.5", "400", places=1))
    if sex != "male":
        patient["pregnant"] = draw(tri)
    pain = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "duration_weeks": st.floats(0, 5200, allow_nan=False),
                "nrs": st.integers(0, 10),
                "constant": tri,
                "widespread": tri,
                "headache": tri,
                "daily_activity_impact": st.sampled_from(
                    [None, "none", "mild", "moderate", "severe"]
                ),
            },
        )
    )
    regions = draw(
        st.lists(
            st.sampled_from(["neck", "upper_back", "mid_back", "low_back", "pelvic_girdle"]),
            min_size=1,
            max_size=5,
            unique=True,
        )
    )
    return {
        "patient": patient,
        "regions": regions,
        "pain": pain,
        "causes": draw(
            st.lists(
                st.sampled_from(
                    ["acute_trauma", "repetitive_microtrauma", "posture", "overuse", "unknown"]
                ),
                max_size=3,
                unique=True,
            )
        ),
        "trigger_points": draw(st.lists(trigger_point, max_size=4)),
        "pain_generators": draw(generators),
        "red_flags": draw(finding_map(RED_FLAGS)),
        "contraindications": draw(finding_map(CONTRA)),
        "conservative_care": draw(st.one_of(st.none(), st.lists(care, max_size=4))),
        "medications": draw(st.one_of(st.none(), st.lists(medication, max_size=3))),
    }
