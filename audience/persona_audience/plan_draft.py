"""What the LLM planner asks a model for, and how its answer becomes a ``Suggestion``.

The answer's schema (``PlanDraft``) is deliberately loose: places and occupations are
plain names, shares are any positive weights, and every list may be empty (the model
leaves a dimension open when the brief does not imply it). ``suggestion_from`` is the
strict part: places are resolved through the gazetteer (unknown ones dropped with a
note), ages clamped and made disjoint, lists capped, weights normalised by the plan
contract. Nothing the model says can put an invalid or unknown value into a plan.
"""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from persona_audience.gazetteer import Gazetteer, PlaceKind
from persona_audience.planner import Suggestion
from persona_audience.reading import BriefReader
from persona_contracts.persona import MAX_AGE, MIN_AGE, Gender
from persona_contracts.plan import (
    MAX_AGE_BANDS,
    MAX_LOCATIONS,
    MAX_NOTES,
    MAX_OCCUPATIONS,
    MAX_TRAIT_OPTIONS,
    MAX_TRAITS,
    AgeBand,
    Ages,
    Genders,
    GenderShare,
    Locations,
    LocationShare,
    Occupations,
    OccupationShare,
    Planning,
    Source,
    TraitDimension,
    TraitOption,
)

Text = Annotated[str, Field(max_length=120)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlaceDraft(_Strict):
    country: Text = Field(description="Country name or ISO 3166 alpha-2 code.")
    region: Text | None = Field(description="State or province, or null.")
    city: Text | None = Field(description="City, or null for the whole country or region.")
    share: float = Field(description="Relative weight, above 0.")


class AgeBandDraft(_Strict):
    low: int = Field(description=f"Youngest age in the band, {MIN_AGE} or more.")
    high: int = Field(description=f"Oldest age in the band, {MAX_AGE} or less.")
    share: float


class GenderDraft(_Strict):
    gender: Gender
    share: float


class OccupationDraft(_Strict):
    title: Text = Field(description="A job title in the singular, e.g. `Registered nurse`.")
    share: float


class TraitOptionDraft(_Strict):
    value: Text
    share: float


class TraitDraft(_Strict):
    name: Text = Field(description="How the audience varies, e.g. `how they ride`.")
    options: list[TraitOptionDraft]


class PlanDraft(_Strict):
    """The audience a research brief describes, as shares of each dimension."""

    subject: Text | None = Field(
        description="What the research is about in a few words, e.g. `urban cycling`."
    )
    locations: list[PlaceDraft]
    age_bands: list[AgeBandDraft]
    genders: list[GenderDraft]
    occupations: list[OccupationDraft]
    traits: list[TraitDraft]


def suggestion_from(
    draft: PlanDraft, gazetteer: Gazetteer, reader: BriefReader, planning: Planning
) -> Suggestion:
    """The draft's usable dimensions; what was dropped or cut is noted in ``planning``."""
    notes: list[str] = []
    locations = _locations(draft.locations, gazetteer, notes)
    ages = _ages(draft.age_bands, notes)
    occupations = _occupations(draft.occupations, reader, notes)
    traits = _traits(draft.traits, notes)
    subject = (draft.subject or "").strip() or None
    return Suggestion(
        subject=subject,
        locations=locations,
        ages=ages,
        genders=_genders(draft.genders),
        occupations=occupations,
        traits=traits,
        planning=planning.model_copy(update={"notes": [*planning.notes, *notes][:MAX_NOTES]}),
    )


def _positive(share: float) -> bool:
    return 0 < share < float("inf")


def _locations(
    places: list[PlaceDraft], gazetteer: Gazetteer, notes: list[str]
) -> Locations | None:
    options: list[LocationShare] = []
    for place in places[:MAX_LOCATIONS]:
        country = gazetteer.country(place.country)
        if country is None or not _positive(place.share):
            notes.append(f"dropped the place {place.country!r}: not a country the gazetteer knows")
            continue
        city = gazetteer.city(f"{place.city}, {country.name}") if place.city else None
        region = next(
            (
                p.region
                for p in gazetteer.lookup(place.region or "")
                if p.kind is PlaceKind.REGION and p.country_code == country.code
            ),
            None,
        )
        if place.city and city is None:
            notes.append(f"dropped the city {place.city!r}: not known in {country.name}")
        if place.region and region is None and city is None:
            notes.append(f"dropped the region {place.region!r}: not known in {country.name}")
        options.append(
            LocationShare(
                country_code=country.code,
                country=country.name,
                region=region.name if region and city is None else None,
                city=city.name if city else None,
                share=place.share,
            )
        )
    return Locations(source=Source.BRIEF, options=options) if options else None


def _ages(bands: list[AgeBandDraft], notes: list[str]) -> Ages | None:
    kept: list[AgeBand] = []
    for band in sorted(bands, key=lambda b: b.low)[:MAX_AGE_BANDS]:
        low, high = max(band.low, MIN_AGE), min(band.high, MAX_AGE)
        if kept and low <= kept[-1].high:
            low = kept[-1].high + 1
        if low > high or not _positive(band.share):
            notes.append(f"dropped the age band {band.low}-{band.high}")
            continue
        kept.append(AgeBand(low=low, high=high, share=band.share))
    return Ages(source=Source.BRIEF, bands=kept) if kept else None


def _genders(genders: list[GenderDraft]) -> Genders | None:
    shares: dict[Gender, float] = {}
    for item in genders:
        if _positive(item.share):
            shares[item.gender] = shares.get(item.gender, 0.0) + item.share
    options = [GenderShare(gender=g, share=s) for g, s in shares.items()]
    return Genders(source=Source.BRIEF, options=options) if options else None


def _occupations(
    jobs: list[OccupationDraft], reader: BriefReader, notes: list[str]
) -> Occupations | None:
    options: dict[str, OccupationShare] = {}
    for job in jobs[:MAX_OCCUPATIONS]:
        title = " ".join(job.title.split())
        if not title or not _positive(job.share):
            notes.append(f"dropped the occupation {job.title!r}")
            continue
        fact = reader.occupation(title)
        entry = fact.entry
        options[fact.title] = OccupationShare(
            title=fact.title,
            share=job.share,
            min_age=entry.min_age if entry else MIN_AGE,
            max_age=entry.max_age if entry else MAX_AGE,
        )
    return Occupations(source=Source.BRIEF, options=list(options.values())) if options else None


def _traits(traits: list[TraitDraft], notes: list[str]) -> tuple[TraitDimension, ...]:
    kept: list[TraitDimension] = []
    for trait in traits:
        values = {
            " ".join(o.value.split()): o.share
            for o in trait.options
            if o.value.strip() and _positive(o.share)
        }
        if len(kept) == MAX_TRAITS or not trait.name.strip() or len(values) < 2:
            notes.append(f"dropped the trait dimension {trait.name!r}")
            continue
        options = [
            TraitOption(value=v, share=s) for v, s in list(values.items())[:MAX_TRAIT_OPTIONS]
        ]
        kept.append(TraitDimension(name=trait.name.strip(), options=options, source=Source.BRIEF))
    return tuple(kept)
