"""Near-duplicate detection of generated personas: MinHash signatures and an LSH index.

As in PersonaHub, two personas are near-duplicates when the MinHash estimate of
the Jaccard similarity of their texts reaches a threshold (0.9 by default). The
text is ``fingerprint_text(name, occupation, city, bio)``: folded words in their
original order. Its shingles are runs of ``shingle_size`` consecutive words, so
one changed word breaks up to ``shingle_size`` shingles; for a 60-word text that
is 3 of 58 shingles, a true Jaccard of 55/61 = 0.90, right at the threshold.

The signature of a text is, for each of ``num_perm`` universal hash functions
``(a*h + b) mod p`` with ``p = 2**61 - 1``, the minimum over its shingles, where
``h`` is the shingle's 64-bit BLAKE2b digest (little-endian) truncated to 61
bits. ``(a, b)`` are derived from ``seed`` with BLAKE2b too (no salted ``hash()``,
no RNG), so the signature of a text is the same in every process and on every
machine, and every value fits in a signed 64-bit integer (MongoDB stores them as
a plain list of ints). Signatures stored earlier stay comparable as long as
``num_perm``, ``shingle_size`` and ``seed`` do not change.

``similarity`` is the fraction of equal slots, an unbiased estimate of the
Jaccard similarity with a standard error of ``sqrt(J*(1-J)/num_perm)``: about
0.04 at J = 0.9 and 0.06 at J = 0.5 with 64 permutations. The trade-off: at
threshold 0.9 a pair whose true Jaccard is 0.9 (one word changed in 60) is caught
only about 60% of the time, so false negatives are common right at the threshold
(0.8 catches over 99% of those); false positives are not a practical concern, as
unrelated personas (J below 0.3) would need an estimate off by about ten standard
errors to reach 0.9 (eight to reach 0.8).

``NearDuplicateIndex`` uses LSH banding with a pigeonhole choice of bands: two
signatures whose similarity reaches the threshold disagree in at most ``d`` slots,
so with ``d + 1`` bands at least one band agrees exactly and the pair is always
a candidate. Candidates are verified with the exact ``similarity``, so the index
answers exactly what a brute-force scan would, without scanning every entry.
"""

import hashlib
import itertools
import math
import operator
import re
import struct
from collections.abc import Sequence

from persona_infra.text import fold

MERSENNE_61 = (1 << 61) - 1
DEFAULT_NUM_PERM = 64
DEFAULT_SHINGLE_SIZE = 3
DEFAULT_SEED = 1
DEFAULT_THRESHOLD = 0.9

_WORD = re.compile(r"[^\W_]+", re.UNICODE)

# The vectorised signature packs one shingle per 16-byte slot of a big integer.
_SLOT_BYTES = 16
_ONE_SLOT = b"\x01" + bytes(_SLOT_BYTES - 1)
_DIGEST_PAD = bytes(_SLOT_BYTES - 8)
# Below this many shingles the plain per-element loop is as fast as the packed one.
_PACKED_MIN_SHINGLES = 8
# From this many shingles, searching for the smallest top byte beats min().
_SCAN_MIN_SHINGLES = 32
# Packed per-permutation offsets are cached up to this many slots (512 KiB at 64 perms).
_OFFSET_CACHE_SLOTS = 512


def fingerprint_text(name: str, occupation: str, city: str, bio: str) -> str:
    """The normalised text two personas are compared on.

    Each field is folded (case and accents removed) and reduced to its words,
    dropping punctuation; words keep their order and are joined by single spaces.
    Stopwords are kept: they carry word order, which is what shingles compare.
    """
    return " ".join(
        word for field in (name, occupation, city, bio) for word in _WORD.findall(fold(field))
    )


def _derive(seed: int, index: int, part: str, low: int) -> int:
    """A stable pseudo-random integer in ``[low, MERSENNE_61)``."""
    digest = hashlib.blake2b(f"minhash:{seed}:{index}:{part}".encode(), digest_size=16).digest()
    return low + int.from_bytes(digest, "little") % (MERSENNE_61 - low)


class MinHasher:
    """MinHash signatures over word shingles.

    ``signature`` raises ``ValueError`` for a text without words: an empty text
    has no shingles and no meaningful similarity to anything.
    ``fingerprint_text`` of a valid persona always has words, because occupation
    and city come from the demographic sampler.
    """

    def __init__(
        self,
        num_perm: int = DEFAULT_NUM_PERM,
        shingle_size: int = DEFAULT_SHINGLE_SIZE,
        seed: int = DEFAULT_SEED,
    ) -> None:
        if num_perm < 1:
            raise ValueError(f"num_perm must be positive, got {num_perm}")
        if shingle_size < 1:
            raise ValueError(f"shingle_size must be positive, got {shingle_size}")
        self._num_perm = num_perm
        self._shingle_size = shingle_size
        self._permutations = tuple(
            (_derive(seed, index, "a", 1), _derive(seed, index, "b", 0))
            for index in range(num_perm)
        )
        # For the packed path: a and b + 1, both times 8 (see _packed_signature).
        self._scaled = tuple((8 * a, 8 * (b + 1), a, b) for a, b in self._permutations)
        self._offsets: tuple[int, list[int]] = (0, [])

    @property
    def num_perm(self) -> int:
        return self._num_perm

    @property
    def shingle_size(self) -> int:
        return self._shingle_size

    def signature(self, text: str) -> tuple[int, ...]:
        """The MinHash signature of ``text`` (whitespace-separated words).

        Pass ``fingerprint_text(...)``; ``signature`` itself does not normalise.
        Raises ``ValueError`` if ``text`` has no words.
        """
        shingles = _shingles(text, self._shingle_size)
        if not shingles:
            raise ValueError("cannot sign a text without words")
        blake2b = hashlib.blake2b
        digests = [blake2b(shingle, digest_size=8).digest() for shingle in shingles]
        if len(digests) < _PACKED_MIN_SHINGLES:
            return self._plain_signature(digests)
        return self._packed_signature(digests)

    def _plain_signature(self, digests: Sequence[bytes]) -> tuple[int, ...]:
        """The definition, one element at a time."""
        p = MERSENNE_61
        hashes = [int.from_bytes(digest, "little") & p for digest in digests]
        return tuple(min([(a * h + b) % p for h in hashes]) for a, b in self._permutations)

    def _packed_offsets(self, count: int) -> list[int]:
        """``8(b+1)`` in each of ``count`` slots, per permutation.

        Built once for up to ``_OFFSET_CACHE_SLOTS`` slots and cut to size with a
        mask, which is cheaper than a multiplication per permutation and call.
        """
        capacity, offsets = self._offsets
        if count > capacity:
            if count > _OFFSET_CACHE_SLOTS:
                ones = int.from_bytes(_ONE_SLOT * count, "little")
                return [b8 * ones for _, b8, _, _ in self._scaled]
            capacity = min(max(count, 2 * capacity), _OFFSET_CACHE_SLOTS)
            ones = int.from_bytes(_ONE_SLOT * capacity, "little")
            offsets = [b8 * ones for _, b8, _, _ in self._scaled]
            self._offsets = (capacity, offsets)  # one assignment: safe to share across threads
        mask = (1 << (8 * _SLOT_BYTES * count)) - 1
        return [offset & mask for offset in offsets]

    def _packed_signature(self, digests: Sequence[bytes]) -> tuple[int, ...]:
        """The same values as ``_plain_signature``, with the bulk work in big-integer ops.

        Pure Python pays per operation, so the n shingle hashes are packed into one
        integer ``H`` with one 128-bit slot each, and each permutation is a handful
        of whole-integer operations instead of n multiplications and modulos:

        1. ``x = 8a*H + 8(b+1)`` per slot: ``8x'`` with ``x' = a*h + b + 1 < 2**122``
           (``a, b < p`` and ``h < 2**61``), so no slot overflows into the next.
        2. ``y = (x & (p << 3)) + (x >> 61)``: per slot ``8*(lo + hi) + junk`` where
           ``x' = hi * 2**61 + lo``; the junk is below 8 (bits of ``lo``) or above
           bit 66 (from the next slot), so bits 3..63 hold ``u = (lo + hi) mod 2**61``.
           As ``2**61 ≡ 1 (mod p)``, ``s = lo + hi ≡ a*h + b + 1`` with
           ``1 <= s < 2**62``, so ``u`` is ``k`` or ``k + 1`` for ``k = (a*h + b) mod p``.
        3. Byte 7 of each slot is ``u >> 53``, the top 8 of its 61 bits. Let ``t`` be
           the smallest of those bytes. An element with top byte ``t`` has
           ``k <= u < (t+1) * 2**53``; any other has ``k >= u - 1 >= (t+1) * 2**53 - 1``.
           So the minimum ``k`` is among the elements with top byte ``t``, usually one
           or two, whose exact ``(a*h + b) mod p`` is then computed directly.
        """
        count = len(digests)
        p = MERSENNE_61
        hashes = [h & p for h in struct.unpack(f"<{count}Q", b"".join(digests))]
        ones = int.from_bytes(_ONE_SLOT * count, "little")
        packed = int.from_bytes(_DIGEST_PAD.join(digests) + _DIGEST_PAD, "little") & (ones * p)
        low_mask = ones * (p << 3)
        size = count * _SLOT_BYTES
        scan = count >= _SCAN_MIN_SHINGLES
        signature = []
        for (a8, _, a, b), offset in zip(self._scaled, self._packed_offsets(count), strict=True):
            x = a8 * packed + offset
            tops = ((x & low_mask) + (x >> 61)).to_bytes(size, "little")[7::_SLOT_BYTES]
            if scan:  # the smallest top byte is small when there are many: look for it
                top = 0
                while top not in tops:
                    top += 1
            else:
                top = min(tops)
            index = tops.find(top)
            best = (a * hashes[index] + b) % p
            index = tops.find(top, index + 1)
            while index >= 0:
                value = (a * hashes[index] + b) % p
                if value < best:
                    best = value
                index = tops.find(top, index + 1)
            signature.append(best)
        return tuple(signature)


def _shingles(text: str, size: int) -> set[bytes]:
    """The distinct runs of ``size`` words of ``text`` (UTF-8); a shorter text is one run."""
    words = text.split()
    if not words:
        return set()
    data = " ".join(words).encode()
    if len(words) <= size:
        return {data}
    # Byte offset of each word's start, plus one past the end: shingles are slices.
    starts = [0, *itertools.accumulate(len(word) + 1 for word in data.split(b" "))]
    return {data[starts[i] : starts[i + size] - 1] for i in range(len(words) - size + 1)}


def similarity(a: Sequence[int], b: Sequence[int]) -> float:
    """The fraction of equal slots: the MinHash estimate of the Jaccard similarity."""
    if len(a) != len(b):
        raise ValueError(f"signatures differ in length: {len(a)} and {len(b)}")
    if not a:
        raise ValueError("cannot compare empty signatures")
    equal: int = sum(map(operator.eq, a, b))
    return equal / len(a)


def lsh_bands(num_perm: int, threshold: float) -> tuple[int, int]:
    """``(bands, rows)`` such that every pair with ``similarity >= threshold`` shares a band.

    A pair at the threshold agrees in at least ``needed`` of ``num_perm`` slots,
    so it disagrees in at most ``d = num_perm - needed``; ``d + 1`` bands of
    ``num_perm // (d + 1)`` rows cannot all contain a disagreement. For 64
    permutations: 7 bands of 9 rows at 0.9, 13 bands of 4 rows at 0.8.
    """
    if num_perm < 1:
        raise ValueError(f"num_perm must be positive, got {num_perm}")
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    # The same float comparison as NearDuplicateIndex.find, so the two agree at the boundary.
    needed = next(equal for equal in range(num_perm + 1) if equal / num_perm >= threshold)
    bands = num_perm - needed + 1
    return bands, num_perm // bands


class NearDuplicateIndex:
    """Signatures by key; ``find`` returns the most similar key at or above the threshold.

    LSH banding narrows the search to candidates sharing a band, chosen so that no
    pair at or above the threshold is missed (see ``lsh_bands``); candidates are then
    checked with ``similarity``, so results equal those of a full scan. Ties go to
    the key added first. Adding an existing key replaces its signature. All
    signatures must have the same length, fixed by the first one added.
    """

    def __init__(self, threshold: float) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self._threshold = threshold
        self._length: int | None = None
        self._slices: tuple[slice, ...] = ()
        self._buckets: list[dict[tuple[int, ...], list[int]]] = []
        self._keys: list[str] = []
        self._signatures: list[tuple[int, ...]] = []
        self._slots: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._slots)

    def _check_length(self, signature: Sequence[int]) -> None:
        if not signature:
            raise ValueError("cannot index an empty signature")
        if self._length is None:
            self._length = len(signature)
            bands, rows = lsh_bands(self._length, self._threshold)
            self._slices = tuple(slice(band * rows, (band + 1) * rows) for band in range(bands))
            self._buckets = [{} for _ in range(bands)]
        elif len(signature) != self._length:
            raise ValueError(
                f"signature has {len(signature)} values, the index holds {self._length}"
            )

    def add(self, key: str, signature: Sequence[int]) -> None:
        self._check_length(signature)
        stored = tuple(signature)
        slot = self._slots.get(key)
        if slot is None:
            slot = len(self._keys)
            self._slots[key] = slot
            self._keys.append(key)
            self._signatures.append(stored)
        else:
            previous = self._signatures[slot]
            for band, part in zip(self._buckets, self._slices, strict=True):
                band[previous[part]].remove(slot)
            self._signatures[slot] = stored
        for band, part in zip(self._buckets, self._slices, strict=True):
            band.setdefault(stored[part], []).append(slot)

    def find(self, signature: Sequence[int]) -> str | None:
        if self._length is None:
            return None
        self._check_length(signature)
        probe = tuple(signature)
        candidates: set[int] = set()
        for band, part in zip(self._buckets, self._slices, strict=True):
            members = band.get(probe[part])
            if members:
                candidates.update(members)
        best_slot, best_score = -1, -math.inf
        for slot in sorted(candidates):
            score = similarity(probe, self._signatures[slot])
            if score >= self._threshold and score > best_score:
                best_slot, best_score = slot, score
        return self._keys[best_slot] if best_slot >= 0 else None
