"""The reference data files: valid as shipped, and a broken one fails loudly at start."""

import pytest

from persona_audience.reference import (
    Occupations,
    Population,
    Reference,
    ReferenceDataError,
    parse,
)


def test_the_shipped_files_load() -> None:
    reference = Reference.load()
    assert len(reference.occupations) >= 80
    assert len(reference.lexicon.demonyms) >= 150
    density = reference.population.age_density()
    assert sum(density.values()) == pytest.approx(1.0, abs=0.01)
    titles = [o.title for o in reference.occupations]
    assert len(titles) == len(set(titles))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("occupation = [", "occupations.toml is invalid"),
        ('occupation = [{ title = "X", weight = 1, ages = [70, 20], family = "x" }]', "70-20"),
        ('occupation = [{ title = "X", weight = -1, ages = [20, 70], family = "x" }]', "weight"),
        ('occupation = [{ title = "X", weight = 1, ages = [20, 70], famly = "x" }]', "famly"),
    ],
)
def test_a_broken_occupations_file_names_the_problem(text: str, says: str) -> None:
    with pytest.raises(ReferenceDataError, match=says):
        parse(text, "occupations.toml", Occupations)


def test_age_bands_must_cover_every_age_once() -> None:
    text = (
        "default_countries = 40\ndefault_min_age = 18\n"
        "age_bands = [{ low = 16, high = 50, share = 1 }]\ngenders = { female = 1 }\n"
    )
    with pytest.raises(ReferenceDataError, match="cover 16-100"):
        parse(text, "population.toml", Population)
