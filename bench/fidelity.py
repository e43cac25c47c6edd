"""Brief fidelity benchmark: prints figures, asserts nothing.

    .venv/bin/python -m bench.fidelity [--quick] [--count N]

For a set of briefs that each state facts (a place, an age group, a gender, an
occupation, a subject), it generates every brief's personas the way the worker does
(rule planner -> quota sampler -> offline generator -> ``Persona.assemble``, without the
broker and the database, which do not change a persona) and checks every (persona,
stated fact) pair with its own judge, written here from the brief's words and not
from the planner's reading of them.

Printed, per brief and fact: the share of personas that honour it; overall: the share
of all checks that hold (target: at least 95 %), next to a baseline measured in the same
run, personas drawn from a plan that ignores the brief (what grounding did before
audience plans); and the diversity of what each brief left open (the most common
country's share, the female share, the spread of ages, the distinct occupations).

Then the LLM path: the LLM planner through the real ``openai`` SDK against the fake
OpenAI-compatible server of the tests, scripted with a plan; the personas' counts per
dimension are compared with the quotas of the plan the model's answer became.
"""

import argparse
import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from tests.support.fake_openai import FakeOpenAI, ok

from bench.offline import OfflinePath
from persona_audience.llm_planner import build_planner
from persona_audience.quotas import plan_quotas
from persona_contracts import Persona, PersonaRequested
from persona_infra.settings import Settings
from persona_infra.text import fold

YEAR = 2026
Check = Callable[[Persona], bool]


def city(name: str) -> tuple[str, Check]:
    return f"city {name}", lambda p: fold(p.location.city) == fold(name)


def region(name: str) -> tuple[str, Check]:
    return f"region {name}", lambda p: fold(p.location.region or "") == fold(name)


def country(code: str) -> tuple[str, Check]:
    return f"country {code}", lambda p: p.location.country_code == code


def ages(low: int, high: int) -> tuple[str, Check]:
    return f"age {low}-{high}", lambda p: low <= p.age <= high


def gender(value: str) -> tuple[str, Check]:
    return f"gender {value}", lambda p: p.gender == value


def occupation(*words: str) -> tuple[str, Check]:
    return (
        f"occupation {'/'.join(words)}",
        lambda p: any(w in fold(p.occupation) for w in words),
    )


def subject(stem: str) -> tuple[str, Check]:
    """The subject in the persona's interests, goals and pain points, all three."""

    def honoured(p: Persona) -> bool:
        return all(
            any(stem in fold(item) for item in items)
            for items in (p.interests, p.goals, p.pain_points)
        )

    return f"subject '{stem}'", honoured


@dataclass(frozen=True)
class Brief:
    text: str
    facts: tuple[tuple[str, Check], ...]
    open: frozenset[str] = frozenset()
    """Dimensions the brief leaves open, whose diversity is reported."""


def brief(text: str, *facts: tuple[str, Check]) -> Brief:
    named = {fact.split()[0] for fact, _ in facts}
    left = {"country", "gender", "age", "occupation"} - named
    if named & {"city", "region"}:
        left.discard("country")
    return Brief(text, facts, frozenset(left))


BRIEFS = (
    brief("urban cyclists in Berlin", city("Berlin"), subject("cycl")),
    brief("Japanese gamers in their 30s", country("JP"), ages(30, 39), subject("gam")),
    brief("nurses in Bengaluru", city("Bengaluru"), occupation("nurse")),
    brief("mothers of toddlers in São Paulo", city("São Paulo"), gender("female")),
    brief("retired teachers in Bavaria", region("Bavaria"), ages(60, 100), occupation("retired")),
    brief(
        "Gen Z software engineers in Munich", city("Munich"), ages(16, 29), occupation("software")
    ),
    brief("men over 60 in Texas", region("Texas"), gender("male"), ages(61, 100)),
    brief("farmers in Punjab", region("Punjab"), occupation("farmer")),
    brief("women in Lagos", city("Lagos"), gender("female")),
    brief("students in Bangalore", city("Bengaluru"), occupation("student"), ages(16, 30)),
    brief("teenagers who skateboard", ages(13, 19), subject("skateboard")),
    brief("German nurses in their 40s", country("DE"), ages(40, 49), occupation("nurse")),
    brief("fathers in Toronto", city("Toronto"), gender("male")),
    brief("Brazilian freelancers", country("BR"), subject("freelanc")),
    brief("over-65s in Scotland", region("Scotland"), ages(65, 100)),
    brief("millennial homeowners in Chicago", city("Chicago"), ages(30, 45)),
    brief("UK pensioners", country("GB"), ages(60, 100)),
    brief("small business owners in Ontario", region("Ontario"), occupation("business")),
    brief(
        "female software developers in Kenya",
        country("KE"),
        gender("female"),
        occupation("software"),
    ),
    brief("EV drivers in Norway", country("NO"), subject("electric")),
    brief("baristas in Melbourne", city("Melbourne"), occupation("barista")),
    brief("nurses and doctors in the UK", country("GB"), occupation("nurse", "doctor")),
    brief("young women in Mumbai", city("Mumbai"), gender("female"), ages(18, 29)),
    brief("Swiss retirees", country("CH"), ages(60, 100), occupation("retire")),
    brief("truck drivers in Poland", country("PL"), occupation("truck driver")),
    brief("runners in München", city("Munich"), subject("run")),
    brief("Gen X dads in Bombay", city("Mumbai"), gender("male"), ages(46, 61)),
    brief("Nigerian entrepreneurs", country("NG"), occupation("entrepreneur")),
    brief("Kenyan farmers in their 50s", country("KE"), ages(50, 59), occupation("farmer")),
    brief("home cooks in Lyon", city("Lyon"), subject("cook")),
    brief("single dads in Manchester", city("Manchester"), gender("male")),
    brief("Korean nurses over 50", country("KR"), ages(51, 100), occupation("nurse")),
    brief("elderly farmers in Kerala", region("Kerala"), ages(65, 100), occupation("farmer")),
    brief("Gen Z women in Jakarta", city("Jakarta"), gender("female"), ages(16, 29)),
    brief("college students in Boston", city("Boston"), occupation("student")),
    brief("pensioners in Wales", region("Wales"), ages(60, 100)),
    brief("young men in Cairo", city("Cairo"), gender("male"), ages(18, 29)),
    brief("moms in Texas who homeschool", region("Texas"), gender("female"), subject("homeschool")),
    brief("IT workers in Hyderabad", city("Hyderabad"), occupation("it ")),
    brief("grandmothers in Rome", city("Rome"), gender("female"), ages(45, 100)),
    brief("architects in Copenhagen", city("Copenhagen"), occupation("architect")),
    brief("Dutch cyclists over 40", country("NL"), ages(41, 100), subject("cycl")),
    brief("Mexican truck drivers", country("MX"), occupation("truck driver")),
    brief("nurses in Victoria", region("Victoria"), occupation("nurse")),
)


@dataclass
class Generated:
    brief: Brief
    personas: list[Persona]


def request_for(text: str, count: int) -> PersonaRequested:
    """A request as a user would send it, at a fixed seed and date (generations)."""
    return PersonaRequested(
        brief=text, count=count, seed=7, requested_at=datetime(YEAR, 6, 1, tzinfo=UTC)
    )


def fidelity(runs: Sequence[Generated]) -> tuple[int, int, list[tuple[str, str, int, int]]]:
    rows, held, total = [], 0, 0
    for run in runs:
        for fact, check in run.brief.facts:
            ok = sum(check(p) for p in run.personas)
            rows.append((run.brief.text, fact, ok, len(run.personas)))
            held, total = held + ok, total + len(run.personas)
    return held, total, rows


def diversity(run: Generated) -> str:
    personas, left = run.personas, run.brief.open
    parts = []
    if "country" in left:
        top, n = Counter(p.location.country_code for p in personas).most_common(1)[0]
        parts.append(f"top country {top} {n / len(personas):.0%}")
    if "gender" in left:
        parts.append(f"female {sum(p.gender == 'female' for p in personas) / len(personas):.0%}")
    if "age" in left:
        parts.append(f"age sd {statistics.pstdev(p.age for p in personas):.1f}")
    if "occupation" in left:
        parts.append(f"{len({p.occupation for p in personas})} occupations")
    return ", ".join(parts) or "-"


def main(count: int, quick: bool) -> None:
    briefs = BRIEFS[:8] if quick else BRIEFS
    path = OfflinePath()
    ignored = path.planner.plan_now(PersonaRequested(brief="people"))
    started = time.perf_counter()
    runs = [Generated(b, path.personas(request_for(b.text, count))) for b in briefs]
    elapsed = time.perf_counter() - started
    baseline = [
        Generated(b, path.personas(request_for(b.text, count), plan=ignored)) for b in briefs
    ]
    held, total, rows = fidelity(runs)
    base_held, base_total, base_rows = fidelity(baseline)

    print(
        f"Brief fidelity, offline path: {len(briefs)} briefs x {count} personas "
        f"({elapsed:.1f} s, {len(briefs) * count / elapsed:.0f} personas/s)\n"
    )
    width = max(len(r[0]) for r in rows)
    print(f"{'brief':{width}}  {'stated fact':28} {'honoured':>9} {'baseline':>9}")
    for (text, fact, held_n, n), (_, _, base_n, _) in zip(rows, base_rows, strict=True):
        print(f"{text:{width}}  {fact:28} {held_n / n:9.0%} {base_n / n:9.0%}")
    print(
        f"\nall (persona, stated fact) checks: {held}/{total} = {held / total:.1%} "
        f"(target >= 95 %); baseline, brief ignored: {base_held}/{base_total} = "
        f"{base_held / base_total:.1%}; ratio {held * base_total / max(base_held, 1) / total:.1f}x"
    )
    print("\nWhat the briefs left open (diversity):")
    for run in runs:
        print(f"  {run.brief.text:{width}}  {diversity(run)}")
    asyncio.run(llm_adherence(path, count))


SCRIPTED_BRIEF = "urban cyclists in Berlin"
SCRIPTED_PLAN = {
    "subject": "urban cycling",
    "locations": [
        {"country": "DE", "region": None, "city": "Berlin", "share": 1},
    ],
    "age_bands": [
        {"low": 18, "high": 29, "share": 2},
        {"low": 30, "high": 44, "share": 3},
        {"low": 45, "high": 64, "share": 1},
    ],
    "genders": [{"gender": "female", "share": 1}, {"gender": "male", "share": 1}],
    "occupations": [
        {"title": "Software developer", "share": 2},
        {"title": "Courier", "share": 1},
        {"title": "University student", "share": 1},
        {"title": "Nurse", "share": 1},
    ],
    "traits": [
        {
            "name": "how they ride",
            "options": [
                {"value": "daily commute", "share": 3},
                {"value": "cargo bike", "share": 1},
                {"value": "weekend rides", "share": 1},
            ],
        }
    ],
}


async def llm_adherence(path: OfflinePath, count: int) -> None:
    """The LLM planner's plan, and whether the personas' counts equal its quotas."""
    with FakeOpenAI() as fake:
        fake.script(ok(content=SCRIPTED_PLAN, prompt_tokens=900, completion_tokens=250))
        settings = Settings(
            planner="llm",
            openai_api_key="sk-bench-not-a-key",
            openai_base_url=fake.base_url,
            planner_model="gpt-4o-mini",
        )
        planner = build_planner(settings)
        request = request_for(SCRIPTED_BRIEF, count)
        plan = await planner.plan(request)
        await planner.aclose()
    personas = path.personas(request, plan=plan)
    quotas = plan_quotas(plan, count)
    cells = [p.plan_cell for p in personas if p.plan_cell is not None]
    observed = {
        "locations": Counter(c.location for c in cells),
        "ages": Counter(c.age_band for c in cells),
        "genders": Counter(c.gender for c in cells),
        "occupations": Counter(c.occupation for c in cells),
        **{name: Counter(c.traits[name] for c in cells) for name in quotas.traits},
    }
    planned = {
        name: Counter({q.label: q.count for q in getattr(quotas, name) if q.count})
        for name in ("locations", "ages", "genders", "occupations")
    } | {
        name: Counter({q.label: q.count for q in rows if q.count})
        for name, rows in quotas.traits.items()
    }
    usage = plan.planning.usage
    print(
        f"\nLLM path ({plan.planning.planner} planner, {plan.planning.model}: "
        f"{usage.prompt_tokens}+{usage.completion_tokens} tokens, ${plan.planning.cost_usd:.6f}), "
        f"{count} personas of {SCRIPTED_BRIEF!r} from a scripted plan:"
    )
    for name, counts in planned.items():
        verdict = "equal to the quotas" if observed[name] == counts else "DIFFERENT"
        shown = ", ".join(f"{label} {n}" for label, n in counts.most_common())
        print(f"  {name:12} {verdict}: {shown}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="8 briefs instead of all")
    parser.add_argument("--count", type=int, default=50, help="personas per brief (default 50)")
    arguments = parser.parse_args()
    main(arguments.count, arguments.quick)
