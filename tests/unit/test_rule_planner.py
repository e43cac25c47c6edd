"""The rule planner on briefs as users write them: places, ages, genders, occupations, subject.

Each row states what the brief says and nothing more; every dimension the row does not
name must come out as the real-world default. Ages are clamped to 16..100.
"""

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from persona_audience.planner import AudienceError, RulePlanner
from persona_contracts import Constraints, PersonaRequested
from persona_contracts.plan import AudiencePlan, Source

YEAR = 2026


@dataclass(frozen=True)
class Expect:
    places: tuple[str, ...] = ()
    """Labels of the location options, e.g. ``Berlin, Germany`` (all of them, in order)."""
    countries: frozenset[str] = frozenset()
    """Or: the country codes every option must be in (for groups and demonyms)."""
    ages: tuple[int, int] | None = None
    genders: frozenset[str] = frozenset()
    occupations: tuple[str, ...] = ()
    subject: str | None = None
    traits: tuple[str, ...] = field(default=())


E = Expect
F = frozenset
BRIEFS: list[tuple[str, Expect]] = [
    # places: cities, in any common spelling
    (
        "urban cyclists in Berlin",
        E(places=("Berlin, Germany",), subject="urban cyclists", traits=("how they ride",)),
    ),
    (
        "commuters in München",
        E(places=("Munich, Germany",), subject="commuters", traits=("how they commute",)),
    ),
    ("commuters in Munich", E(places=("Munich, Germany",), subject="commuters")),
    ("app users in Bengaluru", E(places=("Bengaluru, India",), subject="app users")),
    ("app users in Bangalore", E(places=("Bengaluru, India",), subject="app users")),
    ("families in São Paulo", E(places=("São Paulo, Brazil",), subject="families")),
    ("families in Sao Paulo", E(places=("São Paulo, Brazil",), subject="families")),
    ("street vendors in Bombay", E(places=("Mumbai, India",), subject="street vendors")),
    ("renters in Kiev", E(places=("Kyiv, Ukraine",), subject="renters")),
    (
        "tourists visiting Lisbon and Porto",
        E(places=("Lisbon, Portugal", "Porto, Portugal"), subject="tourists visiting"),
    ),
    (
        "night-shift workers in new york",
        E(places=("New York City, United States",), subject="night-shift workers"),
    ),
    ("hipsters in Brooklyn", E(places=("Brooklyn, United States",), subject="hipsters")),
    ("expats living in Dubai", E(places=("Dubai, United Arab Emirates",), subject="expats")),
    (
        "Berlin-based startup founders",
        E(
            places=("Berlin, Germany",),
            occupations=("Startup founder",),
            subject="running a small business",
        ),
    ),
    ("coffee lovers in Nice", E(places=("Nice, France",), subject="coffee lovers")),
    # places: regions and states
    (
        "farmers in Bavaria",
        E(places=("Bavaria, Germany",), occupations=("Farmer",), subject="farming"),
    ),
    (
        "small business owners in Texas",
        E(
            places=("Texas, United States",),
            occupations=("Small business owner",),
            subject="running a small business",
        ),
    ),
    ("surfers in California", E(places=("California, United States",), subject="surfers")),
    ("parents in Ontario", E(places=("Ontario, Canada",), ages=(20, 60))),
    ("voters in Scotland", E(places=("Scotland, United Kingdom",), subject="voters")),
    ("winemakers in Catalonia", E(places=("Catalonia, Spain",), subject="winemakers")),
    (
        "tea growers in Assam",
        E(places=("Assam, India",), occupations=("Grower",), subject="tea growers"),
    ),
    # places: countries, demonyms, groups
    ("smartphone users in Germany", E(places=("Germany",), subject="smartphone users")),
    (
        "Japanese gamers",
        E(places=("Japan",), subject="gamers", traits=("platform", "how they play")),
    ),
    ("German engineers", E(places=("Germany",), occupations=("Engineer",))),
    ("Brazilian freelancers", E(places=("Brazil",), subject="freelancers")),
    (
        "Nigerian entrepreneurs",
        E(places=("Nigeria",), occupations=("Entrepreneur",), subject="running a small business"),
    ),
    (
        "pensioners in the UK",
        E(places=("United Kingdom",), ages=(60, 95), occupations=("Retiree",)),
    ),
    ("online shoppers in the USA", E(places=("United States",), subject="online shoppers")),
    ("Türkiye travellers", E(places=("Turkey",), subject="travellers")),
    ("EV drivers in Norway", E(places=("Norway",), subject="EV drivers")),
    (
        "remote workers across Europe",
        E(countries=F({"DE", "FR", "GB", "IT", "ES", "PL"}), subject="remote workers"),
    ),
    ("Nordic hikers", E(countries=F({"DK", "FI", "IS", "NO", "SE"}), subject="hikers")),
    (
        "mobile gamers in Southeast Asia",
        E(countries=F({"ID", "PH", "VN", "TH"}), subject="mobile gamers"),
    ),
    (
        "Latin American mothers",
        E(countries=F({"BR", "MX", "CO", "AR"}), genders=F({"female"}), ages=(20, 65)),
    ),
    # ages
    ("teenagers who skateboard", E(ages=(16, 19), subject="teenagers who skateboard")),
    ("students", E(ages=(17, 26), occupations=("Student",), subject="studying")),
    (
        "university students in Madrid",
        E(
            places=("Madrid, Spain",),
            ages=(17, 26),
            occupations=("University student",),
            subject="studying",
        ),
    ),
    ("Gen Z shoppers", E(ages=(16, 29), subject="shoppers")),
    ("millennial homeowners", E(ages=(30, 45), subject="homeowners")),
    ("baby boomers", E(ages=(62, 80))),
    ("people in their 30s", E(ages=(30, 39))),
    ("readers in their late twenties", E(ages=(27, 29), subject="readers")),
    ("thirtysomething runners", E(ages=(30, 39), subject="runners")),
    ("adults over 60", E(ages=(61, 100))),
    ("people aged 65+", E(ages=(65, 100))),
    ("shoppers under 25", E(ages=(16, 24), subject="shoppers")),
    (
        "25-34 year old renters in Chicago",
        E(places=("Chicago, United States",), ages=(25, 34), subject="renters"),
    ),
    ("gardeners aged 40 to 55", E(ages=(40, 55), occupations=("Gardener",), subject="gardening")),
    ("people between 18 and 24", E(ages=(18, 24))),
    (
        "retirees in Florida",
        E(places=("Florida, United States",), ages=(60, 95), occupations=("Retiree",)),
    ),
    (
        "seniors learning to use smartphones",
        E(ages=(65, 95), subject="seniors learning to use smartphones"),
    ),
    # genders
    ("mothers of toddlers", E(genders=F({"female"}), ages=(20, 65), subject="mothers of toddlers")),
    (
        "men over 50 in Texas",
        E(places=("Texas, United States",), genders=F({"male"}), ages=(51, 100)),
    ),
    (
        "women in tech in Lagos",
        E(places=("Lagos, Nigeria",), genders=F({"female"}), subject="women in tech"),
    ),
    ("new dads", E(genders=F({"male"}), ages=(20, 45))),
    ("non-binary gamers", E(genders=F({"non-binary"}), subject="non-binary gamers")),
    (
        "housewives in Osaka",
        E(places=("Osaka, Japan",), genders=F({"female"}), occupations=("Housewife",)),
    ),
    ("male nurses", E(genders=F({"male"}), occupations=("Nurse",), subject="nursing")),
    # occupations
    ("nurses", E(occupations=("Nurse",), subject="nursing")),
    (
        "software engineers in Munich",
        E(
            places=("Munich, Germany",),
            occupations=("Software engineer",),
            subject="software development",
        ),
    ),
    ("farmers", E(occupations=("Farmer",), subject="farming")),
    (
        "truck drivers in Poland",
        E(places=("Poland",), occupations=("Truck driver",), subject="driving"),
    ),
    (
        "nurses and doctors in Sydney",
        E(places=("Sydney, Australia",), occupations=("Nurse", "Doctor"), subject="nursing"),
    ),
    ("retired teachers", E(ages=(60, 95), occupations=("Retired teacher",), subject="teaching")),
    ("baristas in Melbourne", E(places=("Melbourne, Australia",), occupations=("Barista",))),
    # briefs that state no fact at all
    ("people who care about privacy", E(subject="care about privacy")),
    (
        "a survey of attitudes to public transport",
        E(subject="survey of attitudes to public transport"),
    ),
    ("users of a meditation app", E(subject="users of a meditation app")),
    ("people", E()),
    ("mobile banking", E(subject="mobile banking")),
]


@pytest.fixture(scope="module")
def planner() -> RulePlanner:
    return RulePlanner.default()


def plan(planner: RulePlanner, brief: str, **constraints: object) -> AudiencePlan:
    request = PersonaRequested(
        brief=brief,
        constraints=Constraints.model_validate(constraints),
        requested_at=datetime(YEAR, 6, 1, tzinfo=UTC),
    )
    return planner.plan_now(request)


def test_the_table_is_large_enough() -> None:
    assert len(BRIEFS) >= 60


@pytest.mark.parametrize(("brief", "expect"), BRIEFS, ids=[b for b, _ in BRIEFS])
def test_the_plan_states_what_the_brief_says(
    planner: RulePlanner, brief: str, expect: Expect
) -> None:
    made = plan(planner, brief)
    labels = tuple(option.label for option in made.locations.options)
    codes = {option.country_code for option in made.locations.options}
    if expect.places:
        assert labels == expect.places
    elif expect.countries:
        assert expect.countries <= codes
        assert len(codes) > len(expect.countries) or codes == expect.countries
    else:
        assert made.locations.source is Source.DEFAULT
        assert len(made.locations.options) >= 20
    assert (made.locations.source is Source.BRIEF) == bool(expect.places or expect.countries)
    if expect.ages:
        assert (made.ages.low, made.ages.high) == expect.ages
        assert made.ages.source is Source.BRIEF
    elif not expect.occupations:
        assert (made.ages.source, made.ages.low, made.ages.high) == (Source.DEFAULT, 18, 100)
    genders = {option.gender for option in made.genders.options}
    assert genders == (expect.genders or {"female", "male", "non-binary"})
    assert (made.genders.source is Source.BRIEF) == bool(expect.genders)
    titles = tuple(option.title for option in made.occupations.options)
    if expect.occupations:
        assert titles == expect.occupations
        assert made.occupations.source is Source.BRIEF
    else:
        assert made.occupations.source is Source.DEFAULT
        assert len(titles) >= 10
    assert made.subject == expect.subject
    trait_names = tuple(trait.name for trait in made.traits)
    if expect.traits:
        assert trait_names[: len(expect.traits)] == expect.traits


# --- Where each dimension comes from ---------------------------------------------------------


def test_constraints_override_and_say_so(planner: RulePlanner) -> None:
    made = plan(planner, "commuters", countries={"DE": 0.7, "NL": 0.3}, min_age=30, max_age=49)
    assert made.locations.source is Source.CONSTRAINTS
    assert [(o.country_code, round(o.share, 2)) for o in made.locations.options] == [
        ("DE", 0.7),
        ("NL", 0.3),
    ]
    assert made.ages.source is Source.CONSTRAINTS
    assert (made.ages.low, made.ages.high) == (30, 49)
    assert all(o.max_age >= 30 for o in made.occupations.options), "jobs follow the ages"


def test_constraints_narrow_a_brief_they_agree_with(planner: RulePlanner) -> None:
    made = plan(planner, "remote workers across Europe", countries={"PT": 1})
    assert [o.label for o in made.locations.options] == ["Portugal"]
    made = plan(planner, "people in their 30s", min_age=35)
    assert (made.ages.low, made.ages.high) == (35, 39)


def test_weighted_constraints_of_every_kind(planner: RulePlanner) -> None:
    made = plan(
        planner,
        "commuters",
        cities={"Portland, Maine": 1, "Munich": 3},
        genders={"female": 3, "male": 1},
        occupations={"nurse": 1, "software engineer": 1},
        age_bands=[{"low": 20, "high": 29, "share": 1}, {"low": 40, "high": 49, "share": 3}],
        locale="de-DE",
    )
    assert [o.label for o in made.locations.options] == [
        "Portland, United States",
        "Munich, Germany",
    ]
    assert [(o.gender, o.share) for o in made.genders.options] == [("female", 0.75), ("male", 0.25)]
    assert [o.title for o in made.occupations.options] == ["Nurse", "Software engineer"]
    assert [(b.label, b.share) for b in made.ages.bands] == [("20-29", 0.25), ("40-49", 0.75)]
    assert (made.language.code, made.language.source) == ("de-DE", Source.CONSTRAINTS)


@pytest.mark.parametrize(
    ("brief", "constraints", "says"),
    [
        (
            "teenagers",
            {"min_age": 40},
            "the brief states ages 16-19 but the constraints set min_age 40",
        ),
        ("nurses in Berlin", {"countries": {"FR": 1}}, "the brief names Berlin, Germany"),
        ("mothers in Lima", {"genders": {"male": 1}}, "the brief is about female"),
        (
            "nurses",
            {"occupation": "farmer"},
            "the brief names Nurse but the constraints ask for Farmer",
        ),
        ("people in Japan", {"cities": {"Berlin": 1}}, "the brief names Japan"),
        ("Gen Z gamers", {"age_bands": [{"low": 50, "high": 60, "share": 1}]}, "age_bands"),
        ("commuters", {"country": "Atlantis"}, "unknown country 'Atlantis'"),
        ("commuters", {"cities": {"Gotham City": 1}}, "unknown city 'Gotham City'"),
    ],
)
def test_contradictions_and_unknown_places_are_errors(
    planner: RulePlanner, brief: str, constraints: dict[str, object], says: str
) -> None:
    with pytest.raises(AudienceError, match=says):
        plan(planner, brief, **constraints)


def test_a_given_audience_is_used_and_constraints_still_apply(planner: RulePlanner) -> None:
    base = plan(planner, "urban cyclists in Berlin")
    request = PersonaRequested(brief="anything at all", audience=base)
    assert planner.plan_now(request).locations == base.locations
    constrained = PersonaRequested(
        brief="anything", audience=base, constraints=Constraints(genders={"female": 1})
    )
    made = planner.plan_now(constrained)
    assert [o.gender for o in made.genders.options] == ["female"]
    assert made.locations == base.locations
    assert made.subject == base.subject


def test_generations_follow_the_year_of_the_request(planner: RulePlanner) -> None:
    later = PersonaRequested(brief="millennials", requested_at=datetime(2036, 1, 1, tzinfo=UTC))
    made = planner.plan_now(later)
    assert (made.ages.low, made.ages.high) == (40, 55)


def test_default_plan_follows_real_world_shares(planner: RulePlanner) -> None:
    made = plan(planner, "people")
    shares = {o.country_code: o.share for o in made.locations.options}
    assert max(shares, key=shares.__getitem__) in {"CN", "IN"}
    assert shares["CN"] + shares["IN"] < 0.5, "diverse beyond the two largest"
    assert {o.gender: round(o.share, 2) for o in made.genders.options} == {
        "female": 0.49,
        "male": 0.49,
        "non-binary": 0.02,
    }
    jobs = {o.title: o.share for o in made.occupations.options}
    assert max(jobs, key=jobs.__getitem__) == "Retiree"
    assert sum(jobs.values()) == pytest.approx(1.0)


def test_a_given_audience_must_name_known_places(planner: RulePlanner) -> None:
    base = plan(planner, "urban cyclists in Berlin")
    fake = base.locations.options[0].model_copy(update={"country_code": "AA"})
    unknown_city = base.locations.options[0].model_copy(update={"city": "Gotham"})
    for option in (fake, unknown_city):
        audience = base.model_copy(
            update={"locations": base.locations.model_copy(update={"options": [option]})}
        )
        with pytest.raises(AudienceError, match="the audience names an unknown"):
            planner.plan_now(PersonaRequested(brief="x", audience=audience))
