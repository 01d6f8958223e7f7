"""Medication recognition: the one normaliser every entry point uses.

A record names a drug in many ways: ``"Eliquis® 5 mg"``, ``"ELIQUIS\u00a05MG BID"``,
``"apixaban (Eliquis) 5 mg tab"``, ``"Aspirin/Dipyridamole ER"``, ``"ASA 81"``,
an RxNorm code. Whatever the spelling, the bleeding-relevant class must come out
the same, because a missed anticoagulant means a deep needle in an anticoagulated
patient with no warning. So names are normalised before matching:

1. Unicode NFKC (full-width letters, ligatures, non-breaking and other spaces),
   then casefold;
2. trademark and copyright signs (® ™ © ℠) removed;
3. punctuation (``/ + - , ( ) [ ] . ;`` …) becomes a word break; any whitespace
   collapses to one space;
4. strength and frequency text (``5 mg``, ``81mg``, ``0.5%``, ``bid``, ``tab``,
   ``oral tablet`` …) is dropped;
5. the remaining words are matched as whole words (one to four in a row) against
   the ingredient and brand names of the value sets (``valuesets.yaml`` ``names``),
   the pathway's medication classes (``pathway.yaml`` ``members``) and their
   whole-word abbreviations (``ASA``, ``LMWH``, ``DOAC`` …).

A combination product yields every class of its ingredients. An RxNorm code in a
value set wins over the name. A name that matches nothing is *unrecognised*,
which the engine turns into a need and a caution, never into "no medicine".

Pure: the index is built from the knowledge base once per knowledge object.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

from triggerpath.knowledge.loader import Knowledge

#: Classes that carry a bleeding risk at the needle site, most serious first.
BLEEDING_CLASSES: tuple[str, ...] = ("anticoagulant", "antiplatelet")
MAX_WORDS = 4
_MARKS = dict.fromkeys(map(ord, "®™©℠"), " ")
_BREAK = re.compile(r"[^\w%]+|_+")
_GLUED = re.compile(r"(?<=[^\W\d_])(?=\d)")
_NUMBER = re.compile(r"^\d+(?:[.,]\d+)?(?:%|[a-zµ]+)?$")
#: Dose-form, unit and frequency words: never part of a drug's name.
_NOISE = frozenset(
    """
    mg mcg µg ug g gm kg ml l iu u units unit mmol meq percent % x
    tab tabs tablet tablets cap caps capsule capsules oral po iv im sc sq subcut subcutaneous
    inj injection injectable solution susp suspension syringe prefilled pen vial ampoule
    er xr sr cr dr ec ir la xl delayed extended release chewable dispersible film coated
    daily bid tid qid qd od bd tds qds qhs hs prn qam qpm nocte mane once twice thrice
    a an the per day days week weekly hourly every hours hr h q and with of in as
    morning evening night bedtime needed stat
    """.split()  # noqa: SIM905 - a word list reads better as words
)
MatchedBy = Literal["code", "name", "none"]


def normalise(text: str) -> str:
    """The name's words, normalised (NFKC, casefold, no marks, punctuation or dose text)."""
    # marks go before NFKC too: NFKC spells ™ as "TM" and ℠ as "SM"
    folded = unicodedata.normalize("NFKC", text.translate(_MARKS)).translate(_MARKS).casefold()
    spaced = _GLUED.sub(" ", _BREAK.sub(" ", folded))  # "eliquis5mg" -> "eliquis 5mg"
    words = spaced.split()
    return " ".join(w for w in words if w not in _NOISE and not _NUMBER.match(w))


def _key(name: str) -> str:
    """A knowledge name in the same normal form (its dose words kept out as well)."""
    return normalise(name)


@dataclass(frozen=True)
class MedicationIndex:
    """Lookup tables built from the knowledge base: names, abbreviations and RxNorm codes."""

    names: dict[str, tuple[str, ...]]
    codes: dict[str, tuple[str, ...]]


def _add(table: dict[str, tuple[str, ...]], key: str, cls: str) -> None:
    """Record that ``key`` names a drug of class ``cls`` (a name may have several)."""
    for k in {key, key.replace(" ", "")}:
        if k and cls not in table.get(k, ()):
            table[k] = (*table.get(k, ()), cls)


def _build(kb: Knowledge) -> MedicationIndex:
    """The index of one knowledge object."""
    names: dict[str, tuple[str, ...]] = {}
    codes: dict[str, tuple[str, ...]] = {}
    for mc in kb.pathway.medication_classes:
        for member in [*mc.members, *mc.abbreviations]:
            _add(names, _key(member), mc.id)
    catalog = kb.valuesets
    for vs in catalog.valuesets:
        if vs.drug_class is None:
            continue
        for name in vs.names:
            _add(names, _key(name), vs.drug_class)
        for system, code in catalog.codes(vs.id):
            if system.id == "rxnorm":
                _add(codes, code.code.strip(), vs.drug_class)
    return MedicationIndex(names, codes)


_INDEXES: dict[int, tuple[Knowledge, MedicationIndex]] = {}


def index(kb: Knowledge) -> MedicationIndex:
    """The medication index of this knowledge base (built once per knowledge object)."""
    hit = _INDEXES.get(id(kb))
    if hit is None or hit[0] is not kb:
        if len(_INDEXES) > 16:  # knowledge objects are few; tests build some
            _INDEXES.clear()
        hit = (kb, _build(kb))
        _INDEXES[id(kb)] = hit
    return hit[1]


@dataclass(frozen=True)
class Recognition:
    """What a medication entry is: its classes and how they were found."""

    classes: tuple[str, ...]
    matched_by: MatchedBy
    normalised: str

    @property
    def drug_class(self) -> str | None:
        """The one class to show: the most bleeding-relevant of the classes found."""
        for cls in BLEEDING_CLASSES:
            if cls in self.classes:
                return cls
        return self.classes[0] if self.classes else None

    @property
    def recognised(self) -> bool:
        return bool(self.classes)


def classes_of_name(name: str, kb: Knowledge) -> tuple[str, ...]:
    """Every class whose ingredient or brand names occur as whole words in ``name``."""
    words = normalise(name).split()
    table = index(kb).names
    found: list[str] = []
    for size in range(min(MAX_WORDS, len(words)), 0, -1):
        for start in range(len(words) - size + 1):
            gram = words[start : start + size]
            for key in {" ".join(gram), "".join(gram)}:  # "Eli-quis" is "eliquis"
                for cls in table.get(key, ()):
                    if cls not in found:
                        found.append(cls)
    return tuple(found)


def recognise(name: str, kb: Knowledge, *, rxnorm: str | None = None) -> Recognition:
    """Classes of a medication: by RxNorm code when the value sets hold it, else by name."""
    norm = normalise(name)
    if rxnorm:
        by_code = index(kb).codes.get(rxnorm.strip(), ())
        if by_code:
            return Recognition(by_code, "code", norm)
    by_name = classes_of_name(name, kb)
    return Recognition(by_name, "name" if by_name else "none", norm)


def medication_class(name: str, kb: Knowledge, *, rxnorm: str | None = None) -> str | None:
    """The single most bleeding-relevant class of a medication, or None when unrecognised."""
    return recognise(name, kb, rxnorm=rxnorm).drug_class
