"""The default distribution tables the grounding sampler draws from.

Where the numbers come from, roughly:

* Country weights are approximate internet users in millions (ITU and
  DataReportal figures from the mid-2020s, rounded). Personas are meant to look
  like people who are online, so China and India dominate the unconstrained mix
  as they do the real online population.
* City weights are approximate metropolitan populations in millions; only
  three to six large cities per country are listed.
* Occupation weights are relative shares loosely based on ILO employment
  shares by sector, flattened so that rare but familiar jobs still appear.
  Each occupation carries a plausible age span; the sampler draws the age
  first and the occupation among those that fit it, which is how students end
  up young and retirees old without a separate model.
* Age bands follow the shape of the world's adult (18-80) population, tilted
  slightly towards younger adults as the online population is.
* Gender: female and male about 0.49 each, non-binary 0.02.
* Name pools are common given and family names per naming culture. Regions are
  naming cultures rather than continents because a continent-wide pool produces
  implausible combinations.

All of this is an approximation meant to give a diverse, believable spread of
personas, not census truth. Pass a different ``DemographicTable`` to the
sampler to change it.
"""

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from persona_pipeline.contracts.persona import Gender

MIN_AGE = 16
MAX_AGE = 100
GENDERS: tuple[Gender, ...] = ("female", "male", "non-binary")
_ISO_ALPHA2 = re.compile(r"^[A-Z]{2}$")


@dataclass(frozen=True, slots=True)
class CityEntry:
    name: str
    weight: float


@dataclass(frozen=True, slots=True)
class CountryEntry:
    """A country; ``region`` names the ``NamePool`` its personas' names come from."""

    name: str
    code: str
    weight: float
    region: str
    cities: tuple[CityEntry, ...]
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class OccupationEntry:
    """An occupation; ``family`` groups jobs for the offline generator's wording."""

    title: str
    weight: float
    min_age: int
    max_age: int
    family: str


@dataclass(frozen=True, slots=True)
class AgeBand:
    """Ages ``low..high`` inclusive, spread evenly within the band."""

    low: int
    high: int
    weight: float


@dataclass(frozen=True, slots=True)
class NamePool:
    """Names of one naming culture.

    ``family_female`` holds the feminine forms where family names inflect by
    gender (Polish, Russian), index-aligned with ``family``. ``family_first``
    marks cultures that put the family name first (Chinese, Japanese, Korean,
    Vietnamese).
    """

    female: tuple[str, ...]
    male: tuple[str, ...]
    family: tuple[str, ...]
    family_female: tuple[str, ...] = ()
    family_first: bool = False


@dataclass(frozen=True, slots=True)
class DemographicTable:
    """Everything the sampler needs; validated on construction so typos fail early."""

    countries: tuple[CountryEntry, ...]
    occupations: tuple[OccupationEntry, ...]
    age_bands: tuple[AgeBand, ...]
    genders: tuple[tuple[Gender, float], ...]
    name_pools: Mapping[str, NamePool]
    _countries_by_key: dict[str, CountryEntry] = field(init=False, repr=False, compare=False)
    _occupations_by_title: dict[str, OccupationEntry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_countries(self.countries, self.name_pools)
        _check_occupations(self.occupations)
        _check_age_bands(self.age_bands)
        _check_genders(self.genders)
        _check_name_pools(self.name_pools)
        object.__setattr__(self, "_countries_by_key", _country_index(self.countries))
        object.__setattr__(
            self, "_occupations_by_title", {o.title.casefold(): o for o in self.occupations}
        )

    def find_country(self, query: str) -> CountryEntry | None:
        """Look a country up by name, alias or ISO code, ignoring case and spacing."""
        return self._countries_by_key.get(_key(query))

    def find_occupation(self, title: str) -> OccupationEntry | None:
        """Look an occupation up by title, ignoring case."""
        return self._occupations_by_title.get(title.strip().casefold())


def _key(text: str) -> str:
    return " ".join(text.split()).casefold()


def _country_index(countries: tuple[CountryEntry, ...]) -> dict[str, CountryEntry]:
    index: dict[str, CountryEntry] = {}
    for country in countries:
        for label in (country.name, country.code, *country.aliases):
            if index.setdefault(_key(label), country) is not country:
                raise ValueError(f"country label {label!r} is ambiguous")
    return index


def _check_countries(countries: tuple[CountryEntry, ...], pools: Mapping[str, NamePool]) -> None:
    if not countries:
        raise ValueError("the table needs at least one country")
    for country in countries:
        if not _ISO_ALPHA2.match(country.code):
            raise ValueError(f"{country.name}: {country.code!r} is not an ISO alpha-2 code")
        if country.weight <= 0 or not country.cities:
            raise ValueError(f"{country.name}: needs a positive weight and at least one city")
        if any(city.weight <= 0 for city in country.cities):
            raise ValueError(f"{country.name}: city weights must be positive")
        if country.region not in pools:
            raise ValueError(f"{country.name}: no name pool for region {country.region!r}")


def _check_occupations(occupations: tuple[OccupationEntry, ...]) -> None:
    if not occupations:
        raise ValueError("the table needs at least one occupation")
    for job in occupations:
        if job.weight <= 0 or not MIN_AGE <= job.min_age <= job.max_age <= MAX_AGE:
            raise ValueError(f"{job.title}: bad weight or age span")


def _check_age_bands(bands: tuple[AgeBand, ...]) -> None:
    if not bands or bands[0].low < MIN_AGE or bands[-1].high > MAX_AGE:
        raise ValueError(f"age bands must lie within {MIN_AGE}..{MAX_AGE}")
    for band, following in itertools.pairwise(bands):
        if following.low != band.high + 1:
            raise ValueError("age bands must be sorted and contiguous")
    if any(band.weight <= 0 or band.low > band.high for band in bands):
        raise ValueError("age bands need positive weights and low <= high")


def _check_genders(genders: tuple[tuple[Gender, float], ...]) -> None:
    if sorted(g for g, _ in genders) != sorted(GENDERS) or any(w <= 0 for _, w in genders):
        raise ValueError(f"gender weights must cover {GENDERS} with positive weights")


def _check_name_pools(pools: Mapping[str, NamePool]) -> None:
    for region, pool in pools.items():
        if not (pool.female and pool.male and pool.family):
            raise ValueError(f"name pool {region!r} has an empty list")
        if pool.family_female and len(pool.family_female) != len(pool.family):
            raise ValueError(f"name pool {region!r}: family_female must align with family")


# --- Countries -----------------------------------------------------------------------------


def _country(
    name: str,
    code: str,
    weight: float,
    region: str,
    cities: tuple[tuple[str, float], ...],
    aliases: tuple[str, ...] = (),
) -> CountryEntry:
    return CountryEntry(
        name=name,
        code=code,
        weight=weight,
        region=region,
        cities=tuple(CityEntry(city, w) for city, w in cities),
        aliases=aliases,
    )


_COUNTRIES = (
    _country(
        "China",
        "CN",
        1090,
        "chinese",
        (
            ("Shanghai", 25),
            ("Beijing", 21),
            ("Guangzhou", 19),
            ("Shenzhen", 18),
            ("Chengdu", 16),
            ("Wuhan", 13),
        ),
        ("People's Republic of China", "PRC"),
    ),
    _country(
        "India",
        "IN",
        750,
        "indian",
        (
            ("Delhi", 33),
            ("Mumbai", 22),
            ("Kolkata", 15),
            ("Bengaluru", 14),
            ("Chennai", 12),
            ("Hyderabad", 11),
        ),
    ),
    _country(
        "United States",
        "US",
        330,
        "anglo",
        (
            ("New York", 20),
            ("Los Angeles", 13),
            ("Chicago", 9.4),
            ("Dallas", 8),
            ("Houston", 7.5),
            ("Atlanta", 6.3),
        ),
        ("USA", "United States of America", "America"),
    ),
    _country(
        "Indonesia",
        "ID",
        185,
        "indonesian",
        (("Jakarta", 34), ("Surabaya", 10), ("Bandung", 9), ("Semarang", 6), ("Medan", 5)),
    ),
    _country(
        "Brazil",
        "BR",
        185,
        "lusophone",
        (
            ("São Paulo", 22),
            ("Rio de Janeiro", 13),
            ("Belo Horizonte", 6),
            ("Brasília", 4.8),
            ("Salvador", 4),
            ("Fortaleza", 4),
        ),
        ("Brasil",),
    ),
    _country(
        "Russia",
        "RU",
        130,
        "russian",
        (
            ("Moscow", 21),
            ("Saint Petersburg", 6.3),
            ("Novosibirsk", 1.6),
            ("Yekaterinburg", 1.5),
            ("Kazan", 1.3),
        ),
        ("Russian Federation",),
    ),
    _country(
        "Pakistan",
        "PK",
        110,
        "pakistan_bangladesh",
        (
            ("Karachi", 17),
            ("Lahore", 13),
            ("Faisalabad", 3.6),
            ("Rawalpindi", 2.3),
            ("Islamabad", 1.2),
        ),
    ),
    _country(
        "Mexico",
        "MX",
        107,
        "hispanic",
        (
            ("Mexico City", 22),
            ("Guadalajara", 5.3),
            ("Monterrey", 5.3),
            ("Puebla", 3.2),
            ("Tijuana", 2.2),
        ),
        ("México",),
    ),
    _country(
        "Nigeria",
        "NG",
        105,
        "nigerian",
        (
            ("Lagos", 16),
            ("Kano", 4.3),
            ("Abuja", 3.8),
            ("Ibadan", 3.6),
            ("Port Harcourt", 3.5),
        ),
    ),
    _country(
        "Japan",
        "JP",
        100,
        "japanese",
        (("Tokyo", 37), ("Osaka", 19), ("Nagoya", 9), ("Fukuoka", 5.5), ("Sapporo", 2.6)),
    ),
    _country(
        "Philippines",
        "PH",
        87,
        "filipino",
        (("Manila", 14), ("Cebu City", 3), ("Davao City", 1.8)),
        ("The Philippines",),
    ),
    _country(
        "Egypt",
        "EG",
        82,
        "arabic",
        (("Cairo", 21), ("Alexandria", 5.5), ("Giza", 4), ("Mansoura", 1), ("Port Said", 0.8)),
    ),
    _country(
        "Germany",
        "DE",
        78,
        "german",
        (
            ("Berlin", 3.7),
            ("Hamburg", 1.9),
            ("Munich", 1.5),
            ("Cologne", 1.1),
            ("Frankfurt", 0.8),
            ("Stuttgart", 0.6),
        ),
        ("Deutschland",),
    ),
    _country(
        "Vietnam",
        "VN",
        78,
        "vietnamese",
        (
            ("Ho Chi Minh City", 9.3),
            ("Hanoi", 8.4),
            ("Haiphong", 2.1),
            ("Da Nang", 1.2),
            ("Can Tho", 1.2),
        ),
        ("Viet Nam",),
    ),
    _country(
        "Bangladesh",
        "BD",
        78,
        "pakistan_bangladesh",
        (("Dhaka", 23), ("Chattogram", 5.5), ("Khulna", 1), ("Rajshahi", 0.9), ("Sylhet", 0.7)),
    ),
    _country(
        "Turkey",
        "TR",
        74,
        "turkish",
        (("Istanbul", 15.7), ("Ankara", 5.8), ("Izmir", 4.4), ("Bursa", 3.2), ("Antalya", 2.7)),
        ("Türkiye", "Turkiye"),
    ),
    _country(
        "Iran",
        "IR",
        73,
        "persian",
        (
            ("Tehran", 9),
            ("Mashhad", 3.3),
            ("Isfahan", 2.2),
            ("Karaj", 1.9),
            ("Shiraz", 1.9),
            ("Tabriz", 1.8),
        ),
        ("Islamic Republic of Iran",),
    ),
    _country(
        "United Kingdom",
        "GB",
        66,
        "anglo",
        (
            ("London", 9),
            ("Birmingham", 2.9),
            ("Manchester", 2.8),
            ("Leeds", 1.9),
            ("Glasgow", 1.7),
            ("Bristol", 0.7),
        ),
        ("UK", "Great Britain", "Britain"),
    ),
    _country(
        "Thailand",
        "TH",
        63,
        "thai",
        (
            ("Bangkok", 11),
            ("Chiang Mai", 1),
            ("Nakhon Ratchasima", 0.5),
            ("Khon Kaen", 0.4),
            ("Hat Yai", 0.4),
        ),
    ),
    _country(
        "France",
        "FR",
        60,
        "french",
        (
            ("Paris", 11),
            ("Lyon", 2.3),
            ("Marseille", 1.9),
            ("Toulouse", 1.5),
            ("Lille", 1.5),
            ("Bordeaux", 1.3),
        ),
    ),
    _country(
        "Italy",
        "IT",
        51,
        "italian",
        (
            ("Rome", 4.3),
            ("Milan", 4.3),
            ("Naples", 3),
            ("Turin", 2.2),
            ("Palermo", 1.2),
            ("Bologna", 1),
        ),
        ("Italia",),
    ),
    _country(
        "South Korea",
        "KR",
        50,
        "korean",
        (("Seoul", 9.4), ("Busan", 3.3), ("Incheon", 3), ("Daegu", 2.4), ("Daejeon", 1.5)),
        ("Korea", "Republic of Korea"),
    ),
    _country(
        "Spain",
        "ES",
        45,
        "hispanic",
        (
            ("Madrid", 6.8),
            ("Barcelona", 5.6),
            ("Valencia", 1.6),
            ("Seville", 1.5),
            ("Bilbao", 1),
            ("Málaga", 1),
        ),
        ("España",),
    ),
    _country(
        "South Africa",
        "ZA",
        45,
        "south_african",
        (
            ("Johannesburg", 6),
            ("Cape Town", 4.8),
            ("Durban", 3.9),
            ("Pretoria", 2.9),
            ("Gqeberha", 1.2),
        ),
    ),
    _country(
        "Argentina",
        "AR",
        40,
        "hispanic",
        (("Buenos Aires", 15), ("Córdoba", 1.6), ("Rosario", 1.4), ("Mendoza", 1.1)),
    ),
    _country(
        "Colombia",
        "CO",
        38,
        "hispanic",
        (("Bogotá", 11), ("Medellín", 4), ("Cali", 2.8), ("Barranquilla", 2.3)),
    ),
    _country(
        "Canada",
        "CA",
        37,
        "anglo",
        (
            ("Toronto", 6.2),
            ("Montreal", 4.3),
            ("Vancouver", 2.6),
            ("Calgary", 1.5),
            ("Ottawa", 1.4),
        ),
    ),
    _country(
        "Saudi Arabia",
        "SA",
        36,
        "arabic",
        (("Riyadh", 7.5), ("Jeddah", 4.7), ("Mecca", 2.4), ("Medina", 1.5), ("Dammam", 1.3)),
        ("KSA",),
    ),
    _country(
        "Poland",
        "PL",
        33,
        "polish",
        (
            ("Warsaw", 3.1),
            ("Kraków", 1.4),
            ("Wrocław", 1.2),
            ("Gdańsk", 1.1),
            ("Łódź", 1),
            ("Poznań", 1),
        ),
        ("Polska",),
    ),
    _country(
        "Morocco",
        "MA",
        33,
        "arabic",
        (("Casablanca", 4.3), ("Rabat", 1.9), ("Fez", 1.3), ("Tangier", 1.3), ("Marrakesh", 1)),
    ),
    _country(
        "Australia",
        "AU",
        25,
        "anglo",
        (
            ("Sydney", 5.4),
            ("Melbourne", 5.2),
            ("Brisbane", 2.7),
            ("Perth", 2.2),
            ("Adelaide", 1.4),
        ),
    ),
    _country(
        "Kenya",
        "KE",
        23,
        "kenyan",
        (("Nairobi", 5), ("Mombasa", 1.3), ("Kisumu", 0.6), ("Nakuru", 0.6)),
    ),
)


# --- Occupations -----------------------------------------------------------------------------

# Retirees carry a large weight because the weight competes only with the jobs
# whose age span reaches that far: at 70 most listed jobs have ended, so most
# 70-year-olds come out retired, while at 60 roughly a third do.
_OCCUPATIONS = tuple(
    OccupationEntry(title, weight, low, high, family)
    for title, weight, low, high, family in (
        ("Retail salesperson", 6, 16, 70, "service"),
        ("Cashier", 3, 16, 70, "service"),
        ("Waiter", 2, 16, 60, "service"),
        ("Chef", 1, 18, 70, "service"),
        ("Hairdresser", 0.8, 17, 70, "service"),
        ("Cleaner", 2.5, 16, 75, "service"),
        ("Security guard", 1.2, 18, 70, "service"),
        ("Customer service representative", 4, 18, 65, "service"),
        ("Office administrator", 4, 18, 70, "business"),
        ("Accountant", 1.5, 21, 70, "business"),
        ("Sales manager", 1, 25, 67, "business"),
        ("Marketing specialist", 1, 21, 65, "business"),
        ("Project manager", 1, 25, 67, "business"),
        ("Small business owner", 4, 20, 80, "business"),
        ("Software developer", 2.5, 20, 65, "tech"),
        ("IT support technician", 1.5, 18, 65, "tech"),
        ("Data analyst", 1, 21, 65, "tech"),
        ("Registered nurse", 2.5, 21, 70, "health"),
        ("Physician", 0.8, 26, 75, "health"),
        ("Pharmacist", 0.4, 24, 70, "health"),
        ("Care worker", 2, 18, 70, "health"),
        ("Primary school teacher", 2, 22, 67, "education"),
        ("Secondary school teacher", 1.5, 22, 67, "education"),
        ("University lecturer", 0.5, 27, 75, "education"),
        ("Electrician", 1.2, 18, 67, "trades"),
        ("Plumber", 0.8, 18, 67, "trades"),
        ("Construction worker", 3.5, 18, 65, "trades"),
        ("Mechanic", 1.3, 18, 67, "trades"),
        ("Factory worker", 5, 18, 65, "trades"),
        ("Farmer", 5, 18, 80, "agriculture"),
        ("Delivery driver", 2, 18, 70, "transport"),
        ("Truck driver", 1.5, 21, 70, "transport"),
        ("Rideshare driver", 1, 21, 70, "transport"),
        ("Civil servant", 2.5, 20, 67, "public"),
        ("Police officer", 0.8, 20, 60, "public"),
        ("Lawyer", 0.5, 24, 75, "public"),
        ("Graphic designer", 0.7, 20, 65, "creative"),
        ("Journalist", 0.4, 21, 70, "creative"),
        ("Musician", 0.3, 18, 80, "creative"),
        ("Content creator", 0.5, 16, 50, "creative"),
        ("Research scientist", 0.4, 25, 70, "science"),
        ("Civil engineer", 0.8, 22, 67, "science"),
        ("Mechanical engineer", 0.7, 22, 67, "science"),
        ("University student", 20, 17, 26, "student"),
        ("Homemaker", 4, 20, 80, "home"),
        ("Job seeker", 2, 18, 65, "seeking"),
        ("Retiree", 40, 60, 100, "retired"),
    )
)


# --- Age and gender ----------------------------------------------------------------------------

_AGE_BANDS = (
    AgeBand(18, 24, 0.14),
    AgeBand(25, 34, 0.21),
    AgeBand(35, 44, 0.19),
    AgeBand(45, 54, 0.16),
    AgeBand(55, 64, 0.13),
    AgeBand(65, 74, 0.11),
    AgeBand(75, 80, 0.06),
)

_GENDERS: tuple[tuple[Gender, float], ...] = (
    ("female", 0.49),
    ("male", 0.49),
    ("non-binary", 0.02),
)


# --- Names ---------------------------------------------------------------------------------


def _names(text: str) -> tuple[str, ...]:
    """Split a comma-separated list; keeps the tables below readable."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


_NAME_POOLS: dict[str, NamePool] = {
    "anglo": NamePool(
        female=_names(
            "Emma, Olivia, Sophia, Emily, Jessica, Sarah, Hannah, Chloe, Grace, Megan, Lauren,"
            " Rachel, Amanda, Jennifer, Michelle, Laura, Karen, Susan, Linda, Aaliyah, Maya, Zoe"
        ),
        male=_names(
            "James, John, Michael, David, Daniel, Matthew, Christopher, Andrew, Joshua, Ryan,"
            " Thomas, William, Benjamin, Liam, Noah, Ethan, Jacob, Mark, Kevin, Marcus, Jamal, Luis"
        ),
        family=_names(
            "Smith, Johnson, Williams, Brown, Jones, Miller, Davis, Wilson, Taylor, Anderson,"
            " Thomas, Moore, Martin, Thompson, White, Clark, Walker, Robinson, Lewis, Hall,"
            " Young, Wright, Campbell, Garcia, Patel"
        ),
    ),
    "hispanic": NamePool(
        female=_names(
            "María, Sofía, Valentina, Camila, Isabella, Lucía, Daniela, Gabriela, Ana, Carmen,"
            " Laura, Paula, Andrea, Fernanda, Mariana, Alejandra, Natalia, Verónica, Patricia,"
            " Rosa, Elena, Ximena"
        ),
        male=_names(
            "José, Juan, Carlos, Luis, Miguel, Javier, Alejandro, Diego, Santiago, Mateo,"
            " Sebastián, Andrés, Jorge, Fernando, Ricardo, Pablo, Manuel, Francisco, Antonio,"
            " Daniel, Eduardo, Raúl"
        ),
        family=_names(
            "García, Rodríguez, Martínez, López, González, Hernández, Pérez, Sánchez, Ramírez,"
            " Torres, Flores, Rivera, Gómez, Díaz, Morales, Castro, Ortiz, Jiménez, Ruiz, Vargas,"
            " Romero, Álvarez, Fernández, Moreno"
        ),
    ),
    "lusophone": NamePool(
        female=_names(
            "Ana, Maria, Juliana, Fernanda, Beatriz, Larissa, Camila, Gabriela, Mariana, Letícia,"
            " Amanda, Bruna, Patrícia, Aline, Vitória, Luana, Helena, Raquel, Tatiana, Isabela"
        ),
        male=_names(
            "João, Pedro, Lucas, Gabriel, Mateus, Rafael, Gustavo, Felipe, Bruno, Rodrigo,"
            " Thiago, Leonardo, Carlos, Paulo, Marcelo, André, Diego, Eduardo, Vinícius, Caio"
        ),
        family=_names(
            "Silva, Santos, Oliveira, Souza, Rodrigues, Ferreira, Alves, Pereira, Lima, Gomes,"
            " Costa, Ribeiro, Martins, Carvalho, Almeida, Lopes, Soares, Fernandes, Vieira,"
            " Barbosa, Rocha, Dias"
        ),
    ),
    "german": NamePool(
        female=_names(
            "Anna, Lena, Laura, Julia, Sarah, Lea, Hannah, Katharina, Sophie, Marie, Johanna,"
            " Lisa, Sabine, Petra, Claudia, Andrea, Susanne, Nicole, Stefanie, Mia, Emma, Jana"
        ),
        male=_names(
            "Lukas, Leon, Jonas, Felix, Maximilian, Paul, Tobias, Jan, Niklas, Florian, Thomas,"
            " Michael, Andreas, Stefan, Markus, Christian, Daniel, Sebastian, Matthias, Jürgen,"
            " Uwe, Frank"
        ),
        family=_names(
            "Müller, Schmidt, Schneider, Fischer, Weber, Meyer, Wagner, Becker, Schulz, Hoffmann,"
            " Schäfer, Koch, Bauer, Richter, Klein, Wolf, Schröder, Neumann, Schwarz, Zimmermann,"
            " Braun, Krüger, Hartmann, Yılmaz"
        ),
    ),
    "french": NamePool(
        female=_names(
            "Camille, Léa, Manon, Chloé, Emma, Inès, Sarah, Julie, Marie, Laura, Pauline, Claire,"
            " Sophie, Nathalie, Isabelle, Sandrine, Céline, Élodie, Mathilde, Lucie, Amina, Océane"
        ),
        male=_names(
            "Lucas, Hugo, Louis, Gabriel, Thomas, Nicolas, Julien, Maxime, Antoine, Alexandre,"
            " Pierre, Romain, Mathieu, Guillaume, Olivier, Philippe, Laurent, Sébastien, Théo,"
            " Karim, Mehdi, Clément"
        ),
        family=_names(
            "Martin, Bernard, Dubois, Thomas, Robert, Richard, Petit, Durand, Leroy, Moreau,"
            " Simon, Laurent, Lefebvre, Michel, Garcia, David, Bertrand, Roux, Vincent, Fournier,"
            " Morel, Girard, Mercier, Benali"
        ),
    ),
    "italian": NamePool(
        female=_names(
            "Giulia, Francesca, Chiara, Sara, Martina, Alessia, Valentina, Federica, Elisa,"
            " Silvia, Elena, Laura, Paola, Anna, Maria, Giorgia, Sofia, Aurora, Roberta, Simona"
        ),
        male=_names(
            "Marco, Alessandro, Luca, Giuseppe, Francesco, Andrea, Matteo, Lorenzo, Davide,"
            " Simone, Stefano, Antonio, Giovanni, Roberto, Paolo, Riccardo, Federico, Fabio,"
            " Gabriele, Leonardo"
        ),
        family=_names(
            "Rossi, Russo, Ferrari, Esposito, Bianchi, Romano, Colombo, Ricci, Marino, Greco,"
            " Bruno, Gallo, Conti, De Luca, Mancini, Costa, Giordano, Rizzo, Lombardi, Moretti,"
            " Barbieri, Fontana"
        ),
    ),
    "polish": NamePool(
        female=_names(
            "Anna, Katarzyna, Maria, Małgorzata, Agnieszka, Barbara, Ewa, Magdalena, Joanna,"
            " Aleksandra, Monika, Zofia, Natalia, Julia, Karolina, Marta, Dorota, Paulina,"
            " Weronika, Zuzanna"
        ),
        male=_names(
            "Piotr, Krzysztof, Andrzej, Tomasz, Paweł, Jan, Michał, Marcin, Jakub, Adam, Łukasz,"
            " Mateusz, Grzegorz, Kamil, Wojciech, Szymon, Filip, Bartosz, Marek, Dawid"
        ),
        family=_names(
            "Nowak, Kowalski, Wiśniewski, Wójcik, Kowalczyk, Kamiński, Lewandowski, Zieliński,"
            " Szymański, Woźniak, Dąbrowski, Kozłowski, Jankowski, Mazur, Kwiatkowski, Krawczyk,"
            " Piotrowski, Grabowski, Nowakowski, Pawłowski"
        ),
        family_female=_names(
            "Nowak, Kowalska, Wiśniewska, Wójcik, Kowalczyk, Kamińska, Lewandowska, Zielińska,"
            " Szymańska, Woźniak, Dąbrowska, Kozłowska, Jankowska, Mazur, Kwiatkowska, Krawczyk,"
            " Piotrowska, Grabowska, Nowakowska, Pawłowska"
        ),
    ),
    "russian": NamePool(
        female=_names(
            "Anastasia, Maria, Daria, Anna, Elena, Olga, Natalia, Tatiana, Irina, Svetlana,"
            " Ekaterina, Yulia, Ksenia, Polina, Alina, Viktoria, Sofia, Marina, Valentina,"
            " Alexandra"
        ),
        male=_names(
            "Alexander, Dmitry, Sergey, Andrey, Alexey, Maxim, Ivan, Mikhail, Nikolai, Artem,"
            " Vladimir, Pavel, Roman, Egor, Kirill, Denis, Igor, Yuri, Oleg, Ilya"
        ),
        family=_names(
            "Ivanov, Smirnov, Kuznetsov, Popov, Vasiliev, Petrov, Sokolov, Mikhailov, Novikov,"
            " Fedorov, Morozov, Volkov, Alekseev, Lebedev, Semenov, Egorov, Pavlov, Kozlov,"
            " Stepanov, Nikolaev"
        ),
        family_female=_names(
            "Ivanova, Smirnova, Kuznetsova, Popova, Vasilieva, Petrova, Sokolova, Mikhailova,"
            " Novikova, Fedorova, Morozova, Volkova, Alekseeva, Lebedeva, Semenova, Egorova,"
            " Pavlova, Kozlova, Stepanova, Nikolaeva"
        ),
    ),
    "chinese": NamePool(
        female=_names(
            "Fang, Jing, Min, Yan, Xiuying, Lina, Ting, Xin, Yue, Mei, Na, Xue, Yuxin, Zihan,"
            " Yutong, Shuang, Qian, Dan, Hui, Lan, Xiaomei, Ruoxi"
        ),
        male=_names(
            "Wei, Hao, Lei, Jun, Yang, Jie, Tao, Ming, Chao, Peng, Qiang, Bo, Zhiwei, Yifan,"
            " Haoran, Zihao, Yuxuan, Jianguo, Guang, Kai, Long, Xiaoming"
        ),
        family=_names(
            "Wang, Li, Zhang, Liu, Chen, Yang, Huang, Zhao, Wu, Zhou, Xu, Sun, Ma, Zhu, Hu, Guo,"
            " He, Lin, Gao, Luo, Zheng, Liang"
        ),
        family_first=True,
    ),
    "japanese": NamePool(
        female=_names(
            "Yui, Aoi, Hina, Sakura, Yuki, Haruka, Misaki, Nanami, Rin, Mei, Akari, Emi, Keiko,"
            " Yoko, Naomi, Ayaka, Mao, Kaori, Tomoko, Megumi, Mio, Riko"
        ),
        male=_names(
            "Haruto, Sota, Yuto, Ren, Hiroshi, Takashi, Kenji, Daiki, Kaito, Riku, Shota, Yusuke,"
            " Takumi, Kazuki, Naoki, Satoshi, Makoto, Koji, Akira, Hayato, Tsubasa, Ryo"
        ),
        family=_names(
            "Sato, Suzuki, Takahashi, Tanaka, Watanabe, Ito, Yamamoto, Nakamura, Kobayashi, Kato,"
            " Yoshida, Yamada, Sasaki, Yamaguchi, Matsumoto, Inoue, Kimura, Hayashi, Shimizu,"
            " Yamazaki, Mori, Ikeda"
        ),
        family_first=True,
    ),
    "korean": NamePool(
        female=_names(
            "Seo-yeon, Ji-woo, Min-ji, Su-bin, Ha-eun, Ji-yeon, Eun-ji, Hye-jin, Yoon-seo, Da-eun,"
            " So-yeon, Ye-jin, Ji-hye, Mi-kyung, Eun-young, Soo-jin, Na-rae, Chae-won, Ji-min,"
            " Hyun-joo"
        ),
        male=_names(
            "Min-jun, Seo-jun, Ji-ho, Do-yoon, Ha-joon, Joon-young, Sung-min, Hyun-woo, Ji-hoon,"
            " Dong-hyun, Jae-won, Min-ho, Sang-woo, Young-ho, Seung-hyun, Tae-yang, Woo-jin,"
            " Jun-seo, Kyung-soo, Jin-woo"
        ),
        family=_names(
            "Kim, Lee, Park, Choi, Jung, Kang, Cho, Yoon, Jang, Lim, Han, Oh, Seo, Shin, Kwon,"
            " Hwang, Ahn, Song, Jeon, Hong"
        ),
        family_first=True,
    ),
    "vietnamese": NamePool(
        female=_names(
            "Thị Lan, Thị Hương, Thị Mai, Ngọc Anh, Thu Trang, Thu Hà, Thanh Hằng, Minh Thư,"
            " Bảo Ngọc, Phương Linh, Khánh Linh, Thùy Dung, Hồng Nhung, Mỹ Linh, Thảo Vy,"
            " Diệu Linh, Hoài An, Quỳnh Anh, Thị Hoa, Ngọc Hân"
        ),
        male=_names(
            "Văn Hùng, Văn Nam, Minh Tuấn, Đức Anh, Quang Huy, Hoàng Long, Thành Công, Minh Khoa,"
            " Gia Bảo, Tuấn Anh, Hữu Phúc, Văn Dũng, Quốc Bảo, Trung Kiên, Đức Thắng, Minh Quân,"
            " Thanh Tùng, Anh Khoa, Văn Toàn, Hải Đăng"
        ),
        family=_names(
            "Nguyễn, Trần, Lê, Phạm, Hoàng, Huỳnh, Phan, Vũ, Võ, Đặng, Bùi, Đỗ, Hồ, Ngô, Dương,"
            " Lý, Đinh, Trương, Mai, Lâm"
        ),
        family_first=True,
    ),
    "indian": NamePool(
        female=_names(
            "Priya, Ananya, Aditi, Kavya, Diya, Pooja, Neha, Sneha, Anjali, Deepika, Shreya,"
            " Meera, Lakshmi, Sunita, Rekha, Kavita, Divya, Isha, Aishwarya, Nandini, Swati,"
            " Simran"
        ),
        male=_names(
            "Rahul, Amit, Arjun, Rohan, Vikram, Aditya, Sanjay, Rajesh, Suresh, Karan, Vivek,"
            " Aarav, Vihaan, Ravi, Manoj, Anil, Deepak, Nikhil, Pranav, Harish, Siddharth, Rohit"
        ),
        family=_names(
            "Sharma, Verma, Patel, Singh, Kumar, Gupta, Reddy, Iyer, Nair, Rao, Das, Mehta,"
            " Joshi, Chatterjee, Banerjee, Mukherjee, Pillai, Agarwal, Desai, Menon, Bhat, Shah,"
            " Yadav, Kulkarni"
        ),
    ),
    "pakistan_bangladesh": NamePool(
        female=_names(
            "Fatima, Ayesha, Zainab, Maryam, Sana, Hina, Amina, Nadia, Rabia, Saima, Farzana,"
            " Nusrat, Tasnim, Sadia, Shirin, Rukhsana, Mehwish, Iqra, Anika, Sumaiya"
        ),
        male=_names(
            "Muhammad, Ahmed, Ali, Hassan, Usman, Bilal, Imran, Faisal, Zubair, Hamza, Tariq,"
            " Asif, Kamran, Rafiq, Shakib, Tanvir, Rashed, Mahmud, Arif, Sajid"
        ),
        family=_names(
            "Khan, Ahmed, Ali, Malik, Hussain, Qureshi, Shah, Iqbal, Chaudhry, Butt, Rahman,"
            " Hossain, Islam, Chowdhury, Uddin, Haque, Siddiqui, Akhtar, Mirza, Sheikh, Karim,"
            " Miah"
        ),
    ),
    "arabic": NamePool(
        female=_names(
            "Fatima, Aisha, Mariam, Nour, Salma, Yasmin, Layla, Hana, Sara, Amira, Huda, Rania,"
            " Dina, Mona, Reem, Noura, Khadija, Zainab, Lina, Asmaa"
        ),
        male=_names(
            "Mohamed, Ahmed, Omar, Ali, Youssef, Khaled, Mahmoud, Mustafa, Hassan, Ibrahim,"
            " Abdullah, Karim, Tarek, Hamza, Amr, Said, Faisal, Saad, Nasser, Yassine"
        ),
        family=_names(
            "Hassan, Ibrahim, Mahmoud, Abdelrahman, Mostafa, Saleh, Mansour, Nasser, Khalil,"
            " Youssef, Salem, Othman, Hamdan, Abdallah, Farouk, Rashid, Kamal, Suleiman, Hamid,"
            " Aziz, Sabry, Fathi"
        ),
    ),
    "turkish": NamePool(
        female=_names(
            "Zeynep, Elif, Ayşe, Fatma, Emine, Merve, Büşra, Esra, Selin, Defne, Ece, Gizem,"
            " Özlem, Hülya, Derya, Tuğba, Seda, Melis, Ebru, Nur"
        ),
        male=_names(
            "Mehmet, Mustafa, Ahmet, Ali, Hüseyin, Hasan, İbrahim, Murat, Emre, Burak, Can, Yusuf,"
            " Ömer, Eren, Kerem, Serkan, Oğuz, Barış, Volkan, Tolga"
        ),
        family=_names(
            "Yılmaz, Kaya, Demir, Şahin, Çelik, Yıldız, Yıldırım, Öztürk, Aydın, Özdemir,"
            " Arslan, Doğan, Kılıç, Aslan, Çetin, Kara, Koç, Kurt, Özkan, Şimşek"
        ),
    ),
    "persian": NamePool(
        female=_names(
            "Zahra, Fatemeh, Maryam, Sara, Narges, Mahsa, Parisa, Leila, Shirin, Niloufar, Negar,"
            " Fereshteh, Mina, Roya, Azadeh, Elham, Samira, Yasaman, Hoda, Ladan"
        ),
        male=_names(
            "Mohammad, Ali, Reza, Hossein, Mehdi, Amir, Hamid, Saeed, Majid, Behnam, Dariush,"
            " Kourosh, Arash, Babak, Navid, Farhad, Omid, Pouya, Siavash, Kaveh"
        ),
        family=_names(
            "Mohammadi, Hosseini, Ahmadi, Rezaei, Moradi, Karimi, Hashemi, Rahimi, Jafari,"
            " Mousavi, Ghorbani, Sadeghi, Heidari, Kazemi, Nazari, Ebrahimi, Rostami, Akbari,"
            " Tehrani, Farahani"
        ),
    ),
    "indonesian": NamePool(
        female=_names(
            "Siti, Dewi, Sri, Putri, Ayu, Fitri, Rina, Wulan, Indah, Nur, Ratna, Lestari, Intan,"
            " Anisa, Rizka, Dian, Maya, Kartika, Novi, Yuliana"
        ),
        male=_names(
            "Budi, Agus, Andi, Dedi, Eko, Rudi, Hendra, Joko, Bambang, Rizky, Fajar, Arif, Dimas,"
            " Adi, Yusuf, Wahyu, Irfan, Bayu, Teguh, Hadi"
        ),
        family=_names(
            "Santoso, Wijaya, Kusuma, Halim, Hartono, Gunawan, Lubis, Siregar, Nasution,"
            " Simanjuntak, Harahap, Sinaga, Tanjung, Hutapea, Salim, Sutanto, Hakim, Rahman,"
            " Hasibuan, Setiadi"
        ),
    ),
    "filipino": NamePool(
        female=_names(
            "Maria, Angelica, Kristine, Jasmine, Mary Grace, Joy, Princess, Camille, Nicole,"
            " Andrea, Patricia, Rhea, Marites, Lovely, Cherry, Mae, Janine, Katrina, Liza, Rowena"
        ),
        male=_names(
            "Juan, Jose, John Paul, Mark, Christian, Jerome, Carlo, Paolo, Rommel, Ramon, Angelo,"
            " Joshua, Miguel, Jericho, Kenneth, Rafael, Nestor, Jayson, Arnel, Renato"
        ),
        family=_names(
            "Santos, Reyes, Cruz, Bautista, Ocampo, Garcia, Mendoza, Torres, Tomas, Andrada,"
            " Castillo, Flores, Villanueva, Ramos, Castro, Rivera, Aquino, Navarro, Dela Cruz,"
            " Gonzales, Lim, Tan"
        ),
    ),
    "thai": NamePool(
        female=_names(
            "Siriporn, Suda, Nattaya, Kanya, Pimchanok, Ratana, Malee, Wanida, Supaporn, Araya,"
            " Chanida, Jintana, Kannika, Napat, Orathai, Pranee, Sasithorn, Thida, Warunee,"
            " Porntip"
        ),
        male=_names(
            "Somchai, Somsak, Anan, Prasert, Kittisak, Wichai, Sombat, Thanawat, Chaiwat,"
            " Nattapong, Pongsakorn, Surasak, Arthit, Kriangsak, Pichai, Sakda, Teerawat, Wirat,"
            " Narong, Chatchai"
        ),
        family=_names(
            "Saetang, Srisuk, Wongsawat, Chaiyaporn, Sukjai, Rattanakorn, Thongchai, Boonmee,"
            " Kaewkla, Phromphan, Sangthong, Chantarasiri, Jaidee, Intharaksa, Suwannarat,"
            " Pattanapong, Somboon, Charoenkul, Siripan, Kongkaew"
        ),
    ),
    "nigerian": NamePool(
        female=_names(
            "Chiamaka, Ngozi, Adaeze, Funmilayo, Aisha, Zainab, Temitope, Blessing, Chioma, Amina,"
            " Folake, Ifeoma, Yetunde, Halima, Nneka, Bukola, Precious, Hauwa, Adaora, Kemi"
        ),
        male=_names(
            "Chukwuemeka, Emeka, Tunde, Adebayo, Ibrahim, Musa, Abubakar, Chinedu, Obinna, Segun,"
            " Femi, Kelechi, Ikenna, Babatunde, Usman, Samuel, Olumide, Nnamdi, Yakubu, Tobi"
        ),
        family=_names(
            "Okafor, Adeyemi, Okonkwo, Bello, Ibrahim, Abubakar, Eze, Nwosu, Ogunleye, Balogun,"
            " Okeke, Ojo, Mohammed, Obi, Olawale, Chukwu, Danjuma, Lawal, Adewale, Nwachukwu,"
            " Afolabi, Umar"
        ),
    ),
    "kenyan": NamePool(
        female=_names(
            "Faith, Grace, Mercy, Esther, Joy, Sharon, Mary, Ann, Lucy, Purity, Caroline, Diana,"
            " Eunice, Winnie, Zawadi, Halima, Wanjiru, Akinyi, Chebet, Njeri"
        ),
        male=_names(
            "Brian, Kevin, Dennis, Collins, Peter, Joseph, David, Daniel, John, James, Samuel,"
            " Emmanuel, Victor, Stephen, Hassan, Baraka, Juma, Evans, Geoffrey, Felix"
        ),
        family=_names(
            "Kamau, Mwangi, Otieno, Ochieng, Odhiambo, Kiprop, Kipchumba, Njoroge, Wanjala,"
            " Mutua, Mwaura, Karanja, Kariuki, Onyango, Wekesa, Chege, Macharia, Omondi, Kimani,"
            " Cheruiyot, Kiplagat, Barasa"
        ),
    ),
    "south_african": NamePool(
        female=_names(
            "Thandiwe, Nomvula, Lerato, Palesa, Naledi, Zanele, Nokuthula, Ayanda, Busisiwe,"
            " Refilwe, Karabo, Lindiwe, Precious, Michelle, Chantal, Anika, Elmarie, Jessica,"
            " Priya, Fatima"
        ),
        male=_names(
            "Thabo, Sipho, Bongani, Mandla, Lwazi, Tshepo, Kagiso, Sibusiso, Themba, Lungile,"
            " Siyabonga, Johan, Pieter, Willem, Dewald, Ruan, Jason, Ryan, Kevin, Vusi"
        ),
        family=_names(
            "Dlamini, Nkosi, Ndlovu, Khumalo, Mokoena, Mthembu, Zulu, Sithole, Mahlangu, Molefe,"
            " Naidoo, Pillay, van der Merwe, Botha, Pretorius, Venter, Smith, Jacobs, Mabaso,"
            " Ngcobo, Nel, Govender"
        ),
    ),
}


DEFAULT_TABLE = DemographicTable(
    countries=_COUNTRIES,
    occupations=_OCCUPATIONS,
    age_bands=_AGE_BANDS,
    genders=_GENDERS,
    name_pools=MappingProxyType(_NAME_POOLS),
)
