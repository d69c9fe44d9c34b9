"""Name keys for search across transliterations: Mohammad / Mohammed / Muhammad / محمد, Abdul Rahman /
Abdulrahman / Abdurrahman / عبد الرحمن, José / JOSE.

A name is cut into tokens after transliteration to ASCII (``anyascii``: Arabic, Persian, Cyrillic, Burmese
and Latin with accents alike), lower case. Particles that are written joined or apart are joined to the
word that follows (``abdul rahman`` -> ``abdulrahman``, ``abu bakr`` -> ``abubakr``, ``al hashimi`` ->
``alhashimi``). Each token then gives two keys:

* ``n:<token>``: the normalised spelling, to rank exact matches first;
* ``s:<skeleton>``: what transliteration variants share: the consonants in order, doubled letters once,
  common digraphs folded (kh -> h, ph -> f, q -> k, ...), a leading vowel kept as ``a``; ``abd`` names
  lose the article's letters (abdulrahman, abdurrahman, abdalrahman -> abd + rahman). Arabic script writes
  no short vowels, so ``محمد`` gives the same skeleton as ``Muhammad``.

An article glued to a family name (``alhashimi``) also gives the keys of the name without it, so
``Hashimi`` finds ``Al-Hashimi``. A query token matches a member when one of its keys is among the
member's keys; every query token must match.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from anyascii import anyascii

_SPLIT = re.compile(r"[^a-z0-9]+")
_ABD = ("abd", "abdu", "abdul", "abdel", "abdal", "abdol", "abdur", "abdus", "abdun", "abdou", "abdoul")
_ABU = ("abu", "abou", "abo")
_ARTICLES = ("al", "el", "ul", "ar", "as", "ash", "ad", "an", "az", "at", "ad-", "ud", "ur", "us")
_DIGRAPHS = (("kh", "h"), ("gh", "g"), ("ph", "f"), ("sh", "s"), ("ch", "s"), ("th", "t"), ("dh", "d"),
             ("zh", "j"), ("dj", "j"), ("ck", "k"), ("x", "ks"), ("q", "k"), ("c", "k"), ("w", "v"),
             ("'", ""))
_VOWELS = set("aeiouy")
_ABD_REST = re.compile(r"^(?:[aeiou](?:l|r|s|n|z|d|t|sh)(?=[a-z]{3}))")
_ARTICLE_GLUED = re.compile(r"^(?:al|el)(?=[a-z]{4})")
MAX_KEY = 60


# Inside a word, waw and ya are mostly the long vowels u and i; alef forms and ayn read as a vowel.
_ARABIC_LONG_U = re.compile(r"(?<=[\u0620-\u064A])\u0648")
_ARABIC_LONG_I = re.compile(r"(?<=[\u0620-\u064A])[\u064A\u06CC]")
_ARABIC_LETTERS = str.maketrans({
    "\u0627": "a", "\u0623": "a", "\u0625": "a", "\u0622": "a", "\u0671": "a", "\u0649": "a",  # alef forms
    "\u0629": "a",  # ta marbuta
    "\u0639": "a",  # ayn
    "\u0626": "i", "\u0624": "u", "\u0621": "",  # hamza
})
_ARABIC_ARTICLE = re.compile(r"(?<![\u0600-\u06FF])\u0627\u0644(?=[\u0600-\u06FF]{2})")


def _arabic_script(text: str) -> str:
    """Arabic-script spellings, made to transliterate like the Latin ones: the article written apart,
    ta marbuta as a final vowel, ayn as a vowel (so that عمر is Omar and عبد is Abd)."""
    text = _ARABIC_ARTICLE.sub("al ", text)
    text = _ARABIC_LONG_U.sub("u", _ARABIC_LONG_I.sub("i", text))
    return text.translate(_ARABIC_LETTERS)


@lru_cache(maxsize=65536)
def tokens(text: str) -> tuple[str, ...]:
    """The name's tokens, transliterated, lower case, with particles joined to the word after them (cached:
    names repeat, and an import asks for each person's several times)."""
    text = unicodedata.normalize("NFKC", text or "")
    if any("\u0600" <= c <= "\u06ff" for c in text):
        text = _arabic_script(text)
    ascii_text = anyascii(text).lower()
    raw = [t for t in _SPLIT.split(ascii_text) if t]
    out: list[str] = []
    i = 0
    while i < len(raw):
        token = raw[i]
        if (token in _ABD or token in _ABU) and i + 1 < len(raw):
            # "abd al rahman": join the article too.
            if raw[i + 1] in _ARTICLES and i + 2 < len(raw):
                out.append(token + raw[i + 1] + raw[i + 2])
                i += 3
                continue
            out.append(token + raw[i + 1])
            i += 2
            continue
        if token in _ARTICLES and i + 1 < len(raw) and token in ("al", "el"):
            out.append(token + raw[i + 1])
            i += 2
            continue
        out.append(token)
        i += 1
    return tuple(out)


@lru_cache(maxsize=65536)
def skeleton(token: str) -> str:
    t = token
    if t.startswith("abd") and len(t) > 5:
        t = "abd" + _ABD_REST.sub("", t[3:])
    elif t.startswith(("abu", "abou")) and len(t) > 5:
        t = "abu" + t[4 if t.startswith("abou") else 3:]
    if len(t) > 3 and t.endswith("h"):
        t = t[:-1]  # a final h is often only written in one script or spelling: Fatimah / Fatima, Abdullah / عبدالله
    for a, b in _DIGRAPHS:
        t = t.replace(a, b)
    lead = "a" if t and t[0] in _VOWELS else ""
    consonants = [c for c in t if c not in _VOWELS]
    out: list[str] = []
    for c in consonants:
        if not out or out[-1] != c:
            out.append(c)
    return (lead + "".join(out))[:MAX_KEY] or token[:MAX_KEY]


@lru_cache(maxsize=65536)
def token_keys(token: str) -> tuple[str, ...]:
    """The keys one token gives: its normalised form, its skeleton, and the same without a glued article."""
    keys = [f"n:{token[:MAX_KEY]}", f"s:{skeleton(token)}"]
    bare = _ARTICLE_GLUED.sub("", token)
    if bare != token:
        keys += [f"n:{bare[:MAX_KEY]}", f"s:{skeleton(bare)}"]
    return tuple(dict.fromkeys(keys))


def member_keys(given_name: str, family_name: str, other_names: list[str] | None = None) -> set[str]:
    """Every key of a member's names, other spellings included."""
    keys: set[str] = set()
    for text in (given_name, family_name, *(other_names or [])):
        for token in tokens(text):
            keys.update(token_keys(token))
    return keys


@dataclass(frozen=True)
class QueryToken:
    text: str
    exact: str  # the n: key
    alternatives: tuple[str, ...]  # any of these matches


def query(text: str) -> list[QueryToken]:
    """What a search box's text looks for: one entry per token (at most eight)."""
    out = []
    for token in tokens(text)[:8]:
        keys = token_keys(token)
        out.append(QueryToken(token, keys[0], tuple(k for k in keys if k.startswith("s:"))))
    return out


def same_person_keys(given_name: str, family_name: str) -> tuple[str, str] | None:
    """The skeletons of the first given-name token and the last family-name token, for duplicate warnings."""
    given, family = tokens(given_name), tokens(family_name)
    if not given or not family:
        return None
    return f"s:{skeleton(given[0])}", f"s:{skeleton(_ARTICLE_GLUED.sub('', family[-1]))}"


def person_key(pair: tuple[str, str]) -> str:
    """One key for "these two name skeletons" (``p:`` and a digest: 34 characters, kept in
    ``Member.look_alike_key`` and indexed with the birth year), so look-alikes are found by one index range
    (same key, born within a year) rather than by joining the given-name and family-name keys of everyone
    sharing a first name."""
    return "p:" + hashlib.blake2b(f"{pair[0]}|{pair[1]}".encode(), digest_size=16).hexdigest()


@lru_cache(maxsize=65536)
def look_alike_key(given_name: str, family_name: str) -> str | None:
    """A member's look-alike key (None for a name without a given and a family part)."""
    pair = same_person_keys(given_name, family_name)
    return None if pair is None else person_key(pair)
