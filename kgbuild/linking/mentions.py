"""Mentions the NER stage does not give the linking stage, found in the text:
aliases introduced in parentheses, quotes or "known as" phrases; quoted nicknames inside a full
name; demonyms of places; and pronouns and nominal mentions ("the company"), each with the named
mention it most likely refers to.

All of it is heuristic and cheap (no model, so a cached document links as a fresh one does); what each rule
does and how it was measured is in kgbuild/linking/METHOD.md."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from kgbuild.model import Document, Mention

# pronoun -> the kgbuild types it can refer to
PRONOUNS = {
    **{p: ("PER",) for p in ("he", "him", "his", "himself", "she", "her", "hers", "herself")},
    **{p: ("ORG", "LOC", "MISC") for p in ("it", "its", "itself")},
    **{p: ("ORG",) for p in ("they", "them", "their", "theirs", "themselves")},
}

# "A (B)", "A ("B")", "A, known as B", "A, also called B": B names the same thing as A
_PAREN = re.compile(r"""^\s*\(\s*["'“‘]?\s*$""")
_KNOWN_AS = re.compile(r"""^\s*,?\s*(?:\(\s*)?(?:also |commonly |better |widely )?(?:known as|called|nicknamed|abbreviated(?: as)?|or)\s+["'“‘]?\s*$""")
# First "Nick" Last: a quoted nickname between two capitalised words
_NICK = re.compile(r"""([A-Z][\w.\-]+(?:\s+[A-Z][\w.\-]+)*)\s*(["'“‘])\s*([A-Z][\w.\-]+)\s*(["'”’])\s*([A-Z][\w\-]+)""")

# demonyms whose country name no suffix rule gives
_DEMONYMS = {
    "american": "united states", "british": "united kingdom", "english": "england", "french": "france",
    "dutch": "netherlands", "german": "germany", "spanish": "spain", "swedish": "sweden",
    "polish": "poland", "danish": "denmark", "finnish": "finland", "irish": "ireland",
    "scottish": "scotland", "welsh": "wales", "greek": "greece", "turkish": "turkey", "swiss": "switzerland",
    "filipino": "philippines", "thai": "thailand", "norwegian": "norway", "chinese": "china",
    "portuguese": "portugal", "czech": "czech republic", "argentine": "argentina", "peruvian": "peru",
    "soviet": "soviet union", "new zealander": "new zealand", "belgian": "belgium",
}
_SUFFIXES = ("n", "an", "ian", "ese", "i", "ish")


@dataclass(slots=True)
class Alias:
    """Mention `alias` names the same thing as mention `full`, for the reason `why`."""

    full: int  # index into Document.mentions
    alias: int  # index into Document.mentions
    why: str


def demonym_of(word: str) -> set[str]:
    """Normalised place names a normalised demonym may stand for ("canadian" -> {"canada", ...})."""
    out = set()
    if word in _DEMONYMS:
        out.add(_DEMONYMS[word])
    for suf in _SUFFIXES:
        if word.endswith(suf) and len(word) > len(suf) + 2:
            stem = word[: -len(suf)]
            out.update({stem, stem + "a", stem + "ia", stem + "y", stem + "e", stem + "o"})
    return out


def expand_nicknames(doc: Document) -> list[str]:
    """Grow a person mention that is the quoted nickname of a full name ("Willi" in
    'Wilfried "Willi" Schneider') to the full name, in place; returns the nicknames."""
    found = []
    spans = {(m.start, m.end): m for m in doc.mentions}
    for match in _NICK.finditer(doc.text):
        m = spans.get(match.span(3))
        if m is None:
            m = next((x for x in doc.mentions if x.start >= match.start(1) and x.end <= match.end(5)
                      and x.type == "PER"), None)
        if m is None or m.type != "PER":
            continue
        start = match.start(1)
        # only the capitalised words right before the quote belong to the name
        words = match.group(1).split()
        if len(words) > 3:
            start = match.start(1) + match.group(1).rfind(" ".join(words[-3:]))
        m.start, m.end = start, match.end(5)
        m.text = doc.text[m.start : m.end]
        found.append(match.group(3))
    return found


def _abbreviation(text: str) -> bool:
    """'IBM', 'U.S.', 'CERN', 'DaimlerChrysler AG' no: two or more capitals and no lowercase word."""
    return sum(c.isupper() for c in text) >= 2 and len(text) <= 12 and not any(w.islower() for w in text.split())


# an abbreviation in parentheses or after "known as" that the recogniser did not label
_NEW_ALIAS = re.compile(r"""\s*(?:\(\s*|,\s*(?:also |commonly |better )?(?:known as|called|abbreviated(?: as)?)\s+)["'“‘]?([A-Z][\w.&-]*[A-Z.][\w.&-]*)["'”’]?\s*[),]""")


def find_aliases(doc: Document, max_gap: int = 40) -> list[Alias]:
    """Alias pairs from the text between two name mentions of a sentence: "A (B)", "A, known as B".

    A parenthesis after a place ("Munich (Germany)") names where it is, not another name for
    it: there B must look like an abbreviation. An abbreviation the recogniser missed becomes a
    new name mention, appended to Document.mentions."""
    names = sorted((i for i, m in enumerate(doc.mentions) if m.kind == "name" and m.type in ("PER", "ORG", "LOC", "MISC")),
                   key=lambda i: doc.mentions[i].start)
    out = []
    for k, a in enumerate(names):
        ma = doc.mentions[a]
        b = names[k + 1] if k + 1 < len(names) else None
        mb = doc.mentions[b] if b is not None else None
        if mb is not None and mb.sentence == ma.sentence and mb.start - ma.end <= max_gap:
            gap = doc.text[ma.end : mb.start]
            if _PAREN.match(gap):
                after = doc.text[mb.end : mb.end + 3].lstrip(" \"'”’")
                if after.startswith(")") and (_abbreviation(mb.text) or "LOC" not in (ma.type, mb.type)):
                    out.append(Alias(a, b, f"{mb.text!r} in parentheses after {ma.text!r}"))
                continue
            if _KNOWN_AS.match(gap):
                out.append(Alias(a, b, f"{ma.text!r}{gap.rstrip()} {mb.text!r}"))
                continue
        match = _NEW_ALIAS.match(doc.text, ma.end)
        if match and _abbreviation(match.group(1)) and (mb is None or mb.start >= match.end(1)):
            start, end = match.span(1)
            if mb is not None and mb.start == start:
                continue
            doc.mentions.append(Mention(start=start, end=end, text=match.group(1), type=ma.type, label=ma.label,
                                        sentence=ma.sentence, score=0.5))
            out.append(Alias(a, len(doc.mentions) - 1, f"{match.group(1)!r} introduced after {ma.text!r}"))
    return out


_PRONOUN = re.compile(r"\b(" + "|".join(PRONOUNS) + r")\b", re.IGNORECASE)
# "it is likely that", "it was decided to", "it rains": an "it" that refers to nothing
_PLEONASTIC = re.compile(
    r"(?:is|was|has been|had been|will be|would be|seems|seemed|appears|appeared|became|becomes)"
    r"(?:\s+\w+){0,2}?\s+(?:that|to|whether|if|when|how)\b|(?:rains|rained|snows|snowed|takes|took)\b",
    re.IGNORECASE)


def find_pronouns(doc: Document) -> list[Mention]:
    """A pronoun mention for each third-person pronoun of the text, pleonastic "it" left out.

    From the text, not the parse: a document restored from the run cache has no parse, and it
    must link exactly as a fresh one does."""
    import bisect

    starts = [s.start for s in doc.sentences]
    taken = [(m.start, m.end) for m in doc.mentions]
    out = []
    for match in _PRONOUN.finditer(doc.text):
        word = match.group(1)
        if not (word.islower() or word.istitle()):
            continue  # "IT", "HIS": an acronym or a heading, not a pronoun
        start, end = match.span()
        if any(s < end and start < e for s, e in taken):
            continue  # inside a name ("The Who", "It Happened One Night")
        low = word.lower()
        if low == "it" and _PLEONASTIC.match(doc.text, end + 1, end + 60):
            continue
        sentence = max(bisect.bisect_right(starts, start) - 1, 0)
        out.append(Mention(start=start, end=end, text=word, type="", label="PRON",
                           sentence=sentence, kind="pronoun"))
    return out


def resolve_pronoun(pronoun: Mention, names: list[Mention], window: int, strategy: str = "subject") -> Mention | None:
    """The named mention a pronoun refers to, among the preceding name mentions of a type the
    pronoun can take at most `window` sentences back: "nearest" takes the closest one;
    "subject" takes the first one of the closest sentence that has one, which is usually that
    sentence's subject; "salient" takes the one whose entity was named most often before the
    pronoun, the subject rule breaking ties (measured in METHOD.md)."""
    types = PRONOUNS[pronoun.text.lower()]
    fits = [m for m in names if m.start < pronoun.start and m.type in types
            and 0 <= pronoun.sentence - m.sentence <= window]
    if not fits:
        return None
    if strategy == "nearest":
        return fits[-1]
    closest = fits[-1].sentence
    subject = next(m for m in fits if m.sentence == closest)
    if strategy == "salient":
        # the entity named most often before the pronoun; the subject rule breaks ties
        counts = Counter(m.entity for m in names if m.start < pronoun.start and m.type in types)
        top = max(counts[m.entity] for m in fits)
        if counts[subject.entity] < top:
            return next(m for m in reversed(fits) if counts[m.entity] == top)
    return subject


# head noun of a definite description -> the kgbuild types of the names it can stand for
NOMINALS = {
    **{w: ("PER",) for w in (
        "actor", "actress", "artist", "author", "bishop", "boxer", "composer", "cyclist", "director", "emperor",
        "footballer", "guitarist", "king", "leader", "man", "mathematician", "musician", "novelist", "painter",
        "philosopher", "physicist", "pianist", "player", "poet", "politician", "president", "producer", "queen",
        "rapper", "scientist", "singer", "songwriter", "woman", "wrestler", "writer", "chemist", "economist",
        "historian", "architect", "athlete", "coach", "general", "journalist", "lawyer", "minister", "officer",
        "pope", "priest", "prince", "princess", "senator", "soldier", "duke", "governor", "sculptor")},
    **{w: ("ORG",) for w in (
        "agency", "airline", "band", "bank", "brand", "club", "college", "company", "corporation", "duo",
        "firm", "franchise", "group", "institute", "label", "magazine", "manufacturer", "network", "newspaper",
        "orchestra", "organisation", "organization", "party", "publisher", "school", "studio", "team",
        "trio", "university", "business", "conglomerate", "charity", "foundation", "ministry", "army", "navy")},
    **{w: ("LOC",) for w in (
        "airport", "borough", "canal", "capital", "castle", "city", "country", "county", "district", "island",
        "lake", "municipality", "mountain", "nation", "parish", "province", "region", "river", "station",
        "town", "township", "valley", "village", "state", "stadium", "church", "bridge", "building", "park",
        "peninsula", "suburb", "commune", "territory", "kingdom", "republic", "hamlet")},
}
# "the film was released", "the 2004 album": works and events, which the recogniser labels
# WORK_OF_ART, PRODUCT or EVENT (a MISC antecedent that is a nationality never fits)
_WORKS = {w: ("MISC",) for w in (
    "album", "film", "movie", "song", "single", "novel", "book", "series", "show", "game", "opera", "play",
    "episode", "war", "battle", "festival", "tournament", "championship", "election", "treaty", "season")}
NOMINALS.update(_WORKS)
_WORK_LABELS = {"WORK_OF_ART", "PRODUCT", "EVENT", "LAW", "MISC"}
# "the" + noun, not followed by a capitalised word ("the company Apple", "the city of Paris"
# introduce a name) or by another noun of the lexicon ("the company town" is a town)
_DEFINITE = re.compile(r"\b([Tt]he)\s+(" + "|".join(sorted(NOMINALS, key=len, reverse=True))
                       + r")\b(?!\s*(?:\s+of\s+|[,(:]\s*|\s+)[A-Z\"'“‘])(?!-)")


def find_nominals(doc: Document) -> list[Mention]:
    """A nominal mention for each definite description "the <noun>" whose noun names a kind of
    person, organisation, place or work (the NOMINALS lexicon), outside name mentions."""
    import bisect

    starts = [s.start for s in doc.sentences]
    taken = [(m.start, m.end) for m in doc.mentions]
    out = []
    for match in _DEFINITE.finditer(doc.text):
        start, end = match.span()
        after = doc.text[end : end + 30].split(maxsplit=1)
        if after and after[0].strip(".,;:'\"()").lower() in NOMINALS:
            continue
        if any(s < end and start < e for s, e in taken):
            continue
        sentence = max(bisect.bisect_right(starts, start) - 1, 0)
        out.append(Mention(start=start, end=end, text=match.group(0), type="", label="NOMINAL",
                           sentence=sentence, kind="nominal"))
    return out


def resolve_nominal(nominal: Mention, names: list[Mention], window: int) -> Mention | None:
    """The name a nominal mention refers to, among the preceding names whose type its noun can
    take (a work or event only for names labelled as one) at most `window` sentences back: the
    one whose entity was named most often before it in the document, the most recent on ties
    (Wikipedia-style text calls its topic "the company" long after naming it)."""
    noun = nominal.text.split()[-1].lower()
    types = NOMINALS[noun]
    fits = [m for m in names if m.start < nominal.start and m.type in types
            and (noun not in _WORKS or m.label in _WORK_LABELS)]
    near = [m for m in fits if nominal.sentence - m.sentence <= window]
    if not near:
        return None
    counts = Counter(m.entity for m in fits)
    top = max(counts[m.entity] for m in near)
    return next(m for m in reversed(near) if counts[m.entity] == top)
