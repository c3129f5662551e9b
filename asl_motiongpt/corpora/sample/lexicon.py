"""The synthetic lexicon and grammar of the embedded sample corpus.

Every concept has an English word, a German word, an ASL-style and a DGS-style gloss, and a sign:
a hand shape, a finger direction, a palm orientation, a location and a movement, each named after
its HamNoSys symbol so the sign's HamNoSys string follows from it. Signs are chosen so that any two
differ in at least two of these parameters: the corpus is meant to be learnable.
Sentences are weather reports (PHOENIX' domain) from a handful of templates; German text carries
umlauts and ß on purpose.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np

# hand shape -> (curl of thumb, index, middle, ring, pinky in [0, 1]; finger spread)
HANDSHAPES = {
    "hamflathand": ((0.1, 0.0, 0.0, 0.0, 0.0), 0.0),
    "hamfist": ((0.8, 1.0, 1.0, 1.0, 1.0), 0.0),
    "hamfinger2": ((0.8, 0.0, 1.0, 1.0, 1.0), 0.0),
    "hamfinger23spread": ((0.8, 0.0, 0.0, 1.0, 1.0), 1.0),
    "hamfinger2345": ((0.0, 0.0, 0.0, 0.0, 0.0), 1.5),
    "hampinch12": ((0.5, 0.6, 0.0, 0.0, 0.0), 0.3),
    "hamceeall": ((0.3, 0.45, 0.45, 0.45, 0.45), 0.0),
}
# finger direction -> roll of the hand in the image plane (degrees; 0 = fingers up)
FINGER_DIRECTIONS = {"hamextfingeru": 0.0, "hamextfingerul": 40.0, "hamextfingerur": -40.0,
                     "hamextfingerl": 85.0}
# palm orientation -> yaw of the hand about its finger axis (degrees; 0 = palm to the viewer)
PALMS = {"hampalml": 70.0, "hampalmd": 0.0, "hampalmr": -70.0}
# location -> right wrist position (x, y, z), neck at the origin, shoulder width 1, y down,
# z towards the viewer negative. None = neutral signing space (no HamNoSys location symbol).
LOCATIONS = {
    None: (-0.25, 0.75, -0.55),
    "hamforehead": (-0.05, -0.6, -0.3),
    "hamchin": (-0.05, -0.25, -0.35),
    "hamcheek": (-0.3, -0.4, -0.3),
    "hamear": (-0.45, -0.45, -0.1),
    "hamshoulders": (-0.4, 0.25, -0.25),
    "hamchest": (-0.05, 0.55, -0.3),
    "hamstomach": (-0.05, 0.95, -0.3),
}
# movement -> HamNoSys symbols (the path itself is drawn in `animate.py`)
MOVEMENTS = {
    "up": ("hammoveu",), "down": ("hammoved",), "left": ("hammovel",), "right": ("hammover",),
    "out": ("hammoveo",), "circle_in": ("hamcirclei",), "circle_out": ("hamcircleo",),
    "wavy": ("hammover", "hamwavy"), "tap": ("hammoved", "hamsmallmod", "hamrepeatfromstart"),
    "wiggle": ("hamfingerplay",),
}


@dataclasses.dataclass(frozen=True)
class Sign:
  handshape: str
  finger_direction: str
  palm: str
  location: str | None
  movement: str
  two_handed: bool

  def hamnosys_symbols(self) -> tuple[str, ...]:
    symbols = ("hamsymmlr",) if self.two_handed else ()
    symbols += (self.handshape, self.finger_direction, self.palm)
    symbols += (self.location,) if self.location else ()
    return symbols + MOVEMENTS[self.movement]

  def params(self) -> tuple:
    return (self.handshape, self.finger_direction, self.palm, self.location, self.movement,
            self.two_handed)


@dataclasses.dataclass(frozen=True)
class Concept:
  key: str
  english: str
  german: str
  gloss_en: str
  gloss_de: str


# (key, English, German, ASL gloss, DGS gloss); slot category follows in GRAMMAR
_CONCEPTS = [
    ("today", "today", "heute", "TODAY", "HEUTE"),
    ("tomorrow", "tomorrow", "morgen", "TOMORROW", "MORGEN"),
    ("day_after", "the day after tomorrow", "übermorgen", "DAY-AFTER-TOMORROW", "UEBERMORGEN"),
    ("night", "tonight", "in der nacht", "NIGHT", "NACHT"),
    ("weekend", "at the weekend", "am wochenende", "WEEKEND", "WOCHENENDE"),
    ("rain", "rain", "regen", "RAIN", "REGEN"),
    ("snow", "snow", "schnee", "SNOW", "SCHNEE"),
    ("sun", "sunshine", "sonnenschein", "SUN", "SONNE"),
    ("fog", "fog", "nebel", "FOG", "NEBEL"),
    ("storm", "storms", "stürme", "STORM", "STURM"),
    ("thunder", "thunderstorms", "gewitter", "THUNDERSTORM", "GEWITTER"),
    ("cloud", "clouds", "wolken", "CLOUD", "WOLKE"),
    ("hail", "hail", "hagel", "HAIL", "HAGEL"),
    ("north", "north", "norden", "NORTH", "NORD"),
    ("south", "south", "süden", "SOUTH", "SUED"),
    ("east", "east", "osten", "EAST", "OST"),
    ("west", "west", "westen", "WEST", "WEST"),
    ("coast", "coast", "an der küste", "COAST", "KUESTE"),
    ("mountains", "mountains", "in den bergen", "MOUNTAIN", "BERG"),
    ("cold", "cold", "kalt", "COLD", "KALT"),
    ("warm", "warm", "warm", "WARM", "WARM"),
    ("hot", "hot", "heiß", "HOT", "HEISS"),
    ("cool", "cool", "kühl", "COOL", "KUEHL"),
    ("mild", "mild", "mäßig warm", "MILD", "MAESSIG"),
    ("much", "heavy", "viel", "MUCH", "VIEL"),
    ("little", "a little", "wenig", "LITTLE", "WENIG"),
    ("strong", "strong", "kräftig", "STRONG", "KRAEFTIG"),
    ("wind", "wind", "wind", "WIND", "WIND"),
    ("maybe", "maybe", "vielleicht", "MAYBE", "VIELLEICHT"),
    ("q", "", "", "QUESTION", "FRAGE"),
]
CONCEPTS = {c[0]: Concept(*c) for c in _CONCEPTS}
TIMES = ("today", "tomorrow", "day_after", "night", "weekend")
WEATHER = ("rain", "snow", "sun", "fog", "storm", "thunder", "cloud", "hail", "wind")
REGIONS = ("north", "south", "east", "west", "coast", "mountains")
TEMPERATURES = ("cold", "warm", "hot", "cool", "mild")
AMOUNTS = ("much", "little", "strong")
_REGION_EN = {"north": "in the north", "south": "in the south", "east": "in the east",
              "west": "in the west", "coast": "on the coast", "mountains": "in the mountains"}
_REGION_DE = {"north": "im norden", "south": "im süden", "east": "im osten", "west": "im westen",
              "coast": "an der küste", "mountains": "in den bergen"}


@dataclasses.dataclass(frozen=True)
class Sentence:
  english: str
  german: str
  concepts_asl: tuple[str, ...]  # sign order of the ASL corpus
  concepts_dgs: tuple[str, ...]  # sign order of the DGS corpus
  question: bool

  def gloss(self, language: str) -> str:
    if language == "en":
      return " ".join(CONCEPTS[c].gloss_en for c in self.concepts_asl)
    return " ".join(CONCEPTS[c].gloss_de for c in self.concepts_dgs)


def make_sentence(rng: np.random.Generator) -> Sentence:
  """One sentence from the grammar; the same rng state always gives the same sentence."""
  when = TIMES[rng.integers(len(TIMES))]
  weather = WEATHER[rng.integers(len(WEATHER))]
  region = REGIONS[rng.integers(len(REGIONS))]
  temperature = TEMPERATURES[rng.integers(len(TEMPERATURES))]
  amount = AMOUNTS[rng.integers(len(AMOUNTS))]
  C = CONCEPTS
  form = rng.integers(4)
  if form == 0:
    en = f"{C[when].english} there will be {C[weather].english} {_REGION_EN[region]}"
    de = f"{C[when].german} gibt es {_REGION_DE[region]} {C[weather].german}"
    return Sentence(en, de, (when, weather, region), (when, region, weather), False)
  if form == 1:
    en = f"{C[when].english} it will be {C[temperature].english} {_REGION_EN[region]}"
    de = f"{C[when].german} wird es {_REGION_DE[region]} {C[temperature].german}"
    return Sentence(en, de, (when, region, temperature), (when, region, temperature), False)
  if form == 2:
    en = f"{C[amount].english} {C[weather].english} {_REGION_EN[region]} {C[when].english}"
    de = f"{C[when].german} {C[amount].german} {C[weather].german} {_REGION_DE[region]}"
    return Sentence(en, de, (weather, amount, region, when), (when, region, weather, amount), False)
  en = f"will there be {C[weather].english} {C[when].english} ?"
  de = f"gibt es {C[when].german} {C[weather].german} ?"
  return Sentence(en, de, (when, weather, "q"), (when, weather, "q"), True)


@functools.lru_cache(maxsize=1)
def signs(seed: int = 7) -> dict[str, Sign]:
  """A sign for every concept; any two differ in at least two parameters."""
  rng = np.random.default_rng(seed)
  options = (tuple(HANDSHAPES), tuple(FINGER_DIRECTIONS), tuple(PALMS), tuple(LOCATIONS),
             tuple(MOVEMENTS), (False, True))
  chosen: dict[str, Sign] = {}
  for key in CONCEPTS:
    while True:
      candidate = Sign(*(o[rng.integers(len(o))] for o in options))
      if all(sum(a != b for a, b in zip(candidate.params(), s.params())) >= 2
             for s in chosen.values()):
        chosen[key] = candidate
        break
  return chosen
