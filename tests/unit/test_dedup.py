"""Near-duplicate detection: MinHash signatures, their similarity and the LSH index."""

import hashlib
import json
import random

import pytest

from persona_worker.dedup import (
    DEFAULT_THRESHOLD,
    MERSENNE_61,
    MinHasher,
    NearDuplicateIndex,
    fingerprint_text,
    lsh_bands,
    similarity,
)
from tests.support.determinism import outputs_under_hash_seeds

BIO_NURSE = (
    "Ana has worked night shifts on the cardiology ward of a public hospital for eleven "
    "years. She trains new nurses, keeps a paper notebook of every patient she worries "
    "about, and cycles to work along the river even in winter. On her days off she sings "
    "in a community choir and grows tomatoes on a tiny balcony above a bakery."
)
BIO_TEACHER = (
    "Kenji teaches physics at a secondary school and spends his evenings restoring old "
    "radios he buys at flea markets. He believes every student can love science if they "
    "build something with their own hands first. He is saving for a trip to see the "
    "northern lights and writes a blog about cheap classroom experiments that anyone "
    "can repeat at home."
)
BIO_FARMER = (
    "Grace runs a small dairy farm that has been in her family for four generations. "
    "She switched the herd to organic feed after a drought year nearly ruined them, and "
    "now sells cheese at three weekend markets. She chairs the local water board and "
    "argues patiently with regulators about irrigation quotas and rural broadband for "
    "the villages along the valley."
)
BIO_DEVELOPER = (
    "Mateo writes payment software for a fintech startup and contributes to open source "
    "databases at night. He moved from Bogota for the job, misses his grandmother's "
    "cooking, and plays five-a-side football every Thursday. He wants to found his own "
    "company someday but worries about leaving a stable salary behind while his ageing "
    "parents still need his help."
)
BIO_NURSE_2 = (
    "Rita is a paediatric nurse who moved to the city after nursing school and still "
    "shares a flat with two colleagues. She is studying for a master's degree in public "
    "health, volunteers at a vaccination clinic on Saturdays, and hopes to work for an "
    "international aid organisation before she turns thirty."
)
PERSONAS = {
    "nurse": ("Ana Souza", "Nurse", "Lisbon", BIO_NURSE),
    "teacher": ("Kenji Watanabe", "Teacher", "Osaka", BIO_TEACHER),
    "farmer": ("Grace Mwangi", "Dairy farmer", "Nakuru", BIO_FARMER),
    "developer": ("Mateo Rojas", "Software developer", "Madrid", BIO_DEVELOPER),
}


@pytest.fixture(scope="module")
def hasher() -> MinHasher:
    return MinHasher()


def shingle_set(text: str, size: int = 3) -> set[tuple[str, ...]]:
    """Word shingles as the module defines them, written out independently."""
    words = text.split()
    if len(words) <= size:
        return {tuple(words)}
    return {tuple(words[i : i + size]) for i in range(len(words) - size + 1)}


def jaccard(a: str, b: str) -> float:
    left, right = shingle_set(a), shingle_set(b)
    return len(left & right) / len(left | right)


def reference_signature(hasher: MinHasher, text: str) -> tuple[int, ...]:
    """The documented definition, element by element."""
    hashes = [
        int.from_bytes(
            hashlib.blake2b(" ".join(shingle).encode(), digest_size=8).digest(), "little"
        )
        & MERSENNE_61
        for shingle in shingle_set(text, hasher.shingle_size)
    ]
    permutations = hasher._permutations
    return tuple(min((a * h + b) % MERSENNE_61 for h in hashes) for a, b in permutations)


def fingerprint(key: str) -> str:
    return fingerprint_text(*PERSONAS[key])


def replace_word(text: str, position: int, word: str) -> str:
    words = text.split()
    words[position] = word
    return " ".join(words)


# --- fingerprint text ---------------------------------------------------------------


def test_fingerprint_text_folds_drops_punctuation_and_keeps_order() -> None:
    text = fingerprint_text("Zoë  Müller", "Nurse", "São Paulo", "Loves the sea, and... HIKING!")
    assert text == "zoe muller nurse sao paulo loves the sea and hiking"


def test_the_test_bios_are_sixty_words() -> None:
    assert {
        len(fingerprint_text("", "", "", persona[3]).split()) for persona in PERSONAS.values()
    } == {60}


# --- signatures ---------------------------------------------------------------------


def test_signature_has_num_perm_values_that_fit_in_signed_64_bits(hasher: MinHasher) -> None:
    signature = hasher.signature(fingerprint("nurse"))
    assert len(signature) == hasher.num_perm == 64
    assert all(isinstance(value, int) and 0 <= value < MERSENNE_61 for value in signature)
    assert MERSENNE_61 < 2**63


# The first values for the default MinHasher; see test_signature_is_pinned.
GOLDEN_PREFIX = (593391235568388040, 243116192933113969, 302602989946740977, 296739323984273960)


def test_signature_is_pinned(hasher: MinHasher) -> None:
    """Stored signatures must stay comparable: changing this breaks existing data."""
    assert hasher.signature("the quick brown fox jumps over the lazy dog")[:4] == GOLDEN_PREFIX


def test_signature_is_the_same_in_another_process(hasher: MinHasher) -> None:
    script = (
        "import json\n"
        "from persona_worker.dedup import MinHasher, fingerprint_text\n"
        f"text = fingerprint_text(*{PERSONAS['nurse']!r})\n"
        "print(json.dumps([MinHasher().signature(text), MinHasher(16, 2, 7).signature(text)]))\n"
    )
    outputs = outputs_under_hash_seeds(script)
    assert len(outputs) == 1
    here = [
        hasher.signature(fingerprint("nurse")),
        MinHasher(16, 2, 7).signature(fingerprint("nurse")),
    ]
    assert json.loads(outputs.pop()) == [list(signature) for signature in here]


@pytest.mark.parametrize("words", [1, 2, 3, 4, 7, 8, 9, 31, 32, 33, 60, 200, 700])
def test_signature_follows_its_definition(hasher: MinHasher, words: int) -> None:
    """The vectorised computation returns exactly the per-element definition."""
    rng = random.Random(words)
    vocabulary = [f"w{i}" for i in range(150)] + ["zoë", "straße", "北京"]
    for _ in range(5):
        text = " ".join(rng.choice(vocabulary) for _ in range(words))
        assert hasher.signature(text) == reference_signature(hasher, text)


def test_vectorised_minimum_is_exact_at_byte_boundaries(hasher: MinHasher) -> None:
    """Shingle hashes chosen so that (a*h + b) mod p lands on the values where the
    packed computation's off-by-one and top-byte shortcuts could go wrong."""
    rng = random.Random(5)
    targets = [0, 1, 2, MERSENNE_61 - 2, MERSENNE_61 - 1]
    targets += [(top << 53) + delta for top in (1, 2, 100, 255) for delta in (-2, -1, 0, 1, 2)]
    for _ in range(300):
        hashes = []
        for _ in range(rng.choice([8, 9, 33, 100])):
            a, b = hasher._permutations[rng.randrange(hasher.num_perm)]
            k = rng.choice(targets) if rng.random() < 0.7 else rng.randrange(MERSENNE_61)
            hashes.append((k - b) * pow(a, -1, MERSENNE_61) % MERSENNE_61)
        digests = [h.to_bytes(8, "little") for h in hashes]
        assert hasher._packed_signature(digests) == hasher._plain_signature(digests)


def test_different_seeds_and_sizes_give_different_signatures() -> None:
    text = fingerprint("teacher")
    assert MinHasher(seed=1).signature(text) != MinHasher(seed=2).signature(text)
    assert len(MinHasher(num_perm=16).signature(text)) == 16
    assert MinHasher(shingle_size=2).signature(text) != MinHasher(shingle_size=3).signature(text)


def test_empty_text_cannot_be_signed(hasher: MinHasher) -> None:
    with pytest.raises(ValueError, match="without words"):
        hasher.signature("   ")
    with pytest.raises(ValueError, match="without words"):
        hasher.signature(fingerprint_text("...", "!", "-", "?"))


def test_texts_shorter_than_a_shingle_are_one_shingle(hasher: MinHasher) -> None:
    assert similarity(hasher.signature("nurse"), hasher.signature("nurse")) == 1.0
    assert similarity(hasher.signature("nurse lisbon"), hasher.signature("nurse")) < 0.3


@pytest.mark.parametrize(
    ("num_perm", "shingle_size"), [(0, 3), (64, 0)], ids=["no permutations", "no words"]
)
def test_invalid_hasher_parameters_are_rejected(num_perm: int, shingle_size: int) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        MinHasher(num_perm=num_perm, shingle_size=shingle_size)


# --- similarity ---------------------------------------------------------------------


def test_identical_personas_are_identical_and_found(hasher: MinHasher) -> None:
    signature = hasher.signature(fingerprint("nurse"))
    again = hasher.signature(fingerprint_text("ANA SOUZA", "nurse", "Lisbon", BIO_NURSE))
    assert similarity(signature, again) == 1.0
    index = NearDuplicateIndex(DEFAULT_THRESHOLD)
    index.add("nurse", signature)
    assert index.find(again) == "nurse"


def test_one_changed_word_in_a_sixty_word_bio(hasher: MinHasher) -> None:
    """One word breaks three shingles: true Jaccard ~0.9, right at PersonaHub's threshold.

    With 64 permutations the number of equal slots is roughly Binomial(64, 0.91), so
    at 0.9 (58 of 64 slots) such a pair is caught for only ~60% of hasher seeds; at 0.8
    (52 of 64) for over 99%. The seed is fixed, so this test is stable either way.
    """
    original = fingerprint("nurse")
    edited = fingerprint_text("Ana Souza", "Nurse", "Lisbon", replace_word(BIO_NURSE, 30, "ward"))
    truth = jaccard(original, edited)
    assert 0.88 < truth < 0.92
    estimate = similarity(hasher.signature(original), hasher.signature(edited))
    assert abs(estimate - truth) <= 0.15
    assert estimate >= 0.8
    index = NearDuplicateIndex(0.8)
    index.add("nurse", hasher.signature(original))
    assert index.find(hasher.signature(edited)) == "nurse"


def test_same_bio_under_another_name_is_caught(hasher: MinHasher) -> None:
    original = fingerprint("nurse")
    renamed = fingerprint_text("Beatriz Lima", "Nurse", "Lisbon", BIO_NURSE)
    assert jaccard(original, renamed) > 0.9  # two of 65 words differ, at the start
    # True Jaccard 0.94 sits close to 0.9 as well, so the reliable threshold is 0.8.
    assert similarity(hasher.signature(original), hasher.signature(renamed)) >= 0.8
    renamed_and_edited = fingerprint_text(
        "Beatriz Lima", "Nurse", "Lisbon", replace_word(BIO_NURSE, 40, "choirs")
    )
    index = NearDuplicateIndex(0.8)
    index.add("nurse", hasher.signature(original))
    assert index.find(hasher.signature(renamed)) == "nurse"
    assert index.find(hasher.signature(renamed_and_edited)) == "nurse"


def test_different_personas_are_dissimilar_and_not_found(hasher: MinHasher) -> None:
    signatures = {key: hasher.signature(fingerprint(key)) for key in PERSONAS}
    # Same brief, same occupation and city, another person entirely.
    signatures["nurse-2"] = hasher.signature(
        fingerprint_text("Rita Alves", "Nurse", "Lisbon", BIO_NURSE_2)
    )
    for key, signature in signatures.items():
        index = NearDuplicateIndex(0.8)
        for other, indexed in signatures.items():
            if other != key:
                assert similarity(signature, indexed) < 0.3
                index.add(other, indexed)
        assert index.find(signature) is None


def test_estimate_is_close_to_the_true_jaccard(hasher: MinHasher) -> None:
    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(400)]
    base = [rng.choice(vocabulary) for _ in range(80)]
    errors = []
    for changed in (0, 1, 2, 4, 8, 12, 20, 30, 45, 80):
        variant = list(base)
        for position in rng.sample(range(len(base)), changed):
            variant[position] = rng.choice(vocabulary)
        a, b = " ".join(base), " ".join(variant)
        error = similarity(hasher.signature(a), hasher.signature(b)) - jaccard(a, b)
        assert abs(error) <= 0.15, (changed, error)
        errors.append(abs(error))
    # The standard error is at most 0.0625 at 64 permutations: over 200 other seeds,
    # 0.45% of such pairs were off by more than 0.15 and the mean error stayed <= 0.061.
    assert sum(errors) / len(errors) <= 0.07


def test_similarity_requires_equal_lengths() -> None:
    assert similarity((1, 2, 3, 4), (1, 2, 0, 4)) == 0.75
    with pytest.raises(ValueError, match="differ in length"):
        similarity((1, 2, 3), (1, 2))
    with pytest.raises(ValueError, match="empty"):
        similarity((), ())


# --- the index ----------------------------------------------------------------------


def with_disagreements(signature: tuple[int, ...], positions: list[int]) -> tuple[int, ...]:
    changed = list(signature)
    for position in positions:
        changed[position] = MERSENNE_61 + position  # a value no real signature holds
    return tuple(changed)


BASE = tuple(range(1000, 1064))


def test_lsh_bands_follow_the_pigeonhole_rule() -> None:
    assert lsh_bands(64, 0.9) == (7, 9)
    assert lsh_bands(64, 0.8) == (13, 4)
    assert lsh_bands(64, 1.0) == (1, 64)
    assert lsh_bands(64, 0.01) == (64, 1)
    with pytest.raises(ValueError, match="threshold"):
        lsh_bands(64, 0.0)


def test_threshold_is_respected_at_the_boundary() -> None:
    # 0.9 of 64 is 57.6: 58 equal slots (0.906) pass, 57 (0.891) do not.
    index = NearDuplicateIndex(0.9)
    index.add("base", BASE)
    six_off = with_disagreements(BASE, [0, 9, 18, 27, 36, 45])  # one in each of six bands
    seven_off = with_disagreements(BASE, [0, 9, 18, 27, 36, 45, 54])
    assert similarity(BASE, six_off) == 58 / 64
    assert index.find(six_off) == "base"
    assert index.find(seven_off) is None
    # A threshold equal to a reachable similarity includes it.
    exact = NearDuplicateIndex(58 / 64)
    exact.add("base", BASE)
    assert exact.find(six_off) == "base"
    stricter = NearDuplicateIndex(59 / 64)
    stricter.add("base", BASE)
    assert stricter.find(six_off) is None


def test_index_returns_the_most_similar_key() -> None:
    index = NearDuplicateIndex(0.8)
    index.add("far", with_disagreements(BASE, list(range(0, 60, 6))))  # 54/64
    index.add("near", with_disagreements(BASE, [5, 40]))  # 62/64
    index.add("middle", with_disagreements(BASE, [1, 2, 3, 4, 5]))  # 59/64
    index.add("unrelated", tuple(range(64)))
    assert len(index) == 4
    assert index.find(BASE) == "near"
    assert index.find(tuple(range(5000, 5064))) is None


def test_ties_go_to_the_key_added_first() -> None:
    index = NearDuplicateIndex(0.9)
    index.add("first", with_disagreements(BASE, [3]))
    index.add("second", with_disagreements(BASE, [60]))
    assert index.find(BASE) == "first"


def test_adding_a_key_again_replaces_its_signature() -> None:
    index = NearDuplicateIndex(0.9)
    index.add("a", BASE)
    index.add("a", tuple(range(64)))
    assert len(index) == 1
    assert index.find(BASE) is None
    assert index.find(tuple(range(64))) == "a"


def test_index_rejects_mixed_lengths_and_bad_thresholds() -> None:
    index = NearDuplicateIndex(0.9)
    assert index.find(BASE) is None  # empty
    index.add("a", BASE)
    with pytest.raises(ValueError, match="64"):
        index.add("b", BASE[:32])
    with pytest.raises(ValueError, match="64"):
        index.find(BASE[:32])
    for threshold in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="threshold"):
            NearDuplicateIndex(threshold)


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.8, 0.9, 0.95, 1.0])
def test_index_answers_what_a_full_scan_answers(threshold: float) -> None:
    """LSH only prunes: over signatures at every level of similarity, it misses nothing."""
    rng = random.Random(int(threshold * 100))
    indexed = {}
    for number in range(300):
        keep = rng.random()
        indexed[f"k{number}"] = tuple(
            value if rng.random() < keep else rng.randrange(10**6) for value in BASE
        )
    index = NearDuplicateIndex(threshold)
    for key, signature in indexed.items():
        index.add(key, signature)
    for _ in range(200):
        keep = rng.random()
        probe = tuple(value if rng.random() < keep else rng.randrange(10**6) for value in BASE)
        scores = {key: similarity(probe, signature) for key, signature in indexed.items()}
        best = max(scores.values())
        expected = next(key for key, score in scores.items() if score == best)
        assert index.find(probe) == (expected if best >= threshold else None)


def test_index_over_real_personas(hasher: MinHasher) -> None:
    index = NearDuplicateIndex(0.8)
    for key in PERSONAS:
        index.add(key, hasher.signature(fingerprint(key)))
    edited = fingerprint_text(
        "Grace Mwangi", "Dairy farmer", "Nakuru", replace_word(BIO_FARMER, 12, "herds")
    )
    assert index.find(hasher.signature(edited)) == "farmer"
