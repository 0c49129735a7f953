"""A small synthetic person set with known duplicates and hard non-matches, for matching tests.

420 people; 160 of them have one or two extra records with typos, missing fields and case
changes, and 60 have a sibling (same family name, street, city and birth year, another
given name and birthday): the hard non-matches.
"""

from __future__ import annotations

import random


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


GIVEN = _words(
    "james mary robert patricia john jennifer michael linda david elizabeth william barbara richard "
    "susan joseph jessica thomas sarah charles karen christopher lisa daniel nancy matthew betty "
    "anthony sandra mark margaret donald ashley steven kimberly andrew emily paul donna joshua "
    "michelle kenneth carol kevin amanda brian melissa george deborah timothy stephanie ronald "
    "rebecca edward sharon jason laura"
)
FAMILY = _words(
    "smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez "
    "gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson white harris "
    "sanchez clark ramirez lewis robinson walker young allen king wright scott torres nguyen hill "
    "flores green adams nelson baker hall rivera campbell mitchell carter roberts gomez phillips "
    "evans turner diaz parker"
)
CITIES = {
    "springfield": "62701",
    "riverton": "82501",
    "fairview": "37062",
    "greenville": "29601",
    "madison": "53703",
    "clinton": "61727",
    "franklin": "37064",
    "salem": "97301",
    "georgetown": "78626",
    "bristol": "06010",
    "ashland": "41101",
    "oxford": "38655",
}
STREETS = _words("main oak pine maple cedar elm washington lake hill park view sunset")
FIELDS = ("given_name", "family_name", "birth_date", "street", "city", "postcode", "email")


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("swap", "drop", "replace", "double"))
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    if kind == "replace":
        return word[:i] + rng.choice("aeiourstnl") + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def _person(rng: random.Random, family: str | None = None, year: int | None = None, home=None) -> dict:
    given = rng.choice(GIVEN)
    family = family or rng.choice(FAMILY)
    year = year or rng.randint(1940, 2004)
    city, postcode = home[0:2] if home else rng.choice(sorted(CITIES.items()))
    street = home[2] if home else f"{rng.randint(1, 250)} {rng.choice(STREETS)} street"
    return {
        "given_name": given,
        "family_name": family,
        "birth_date": f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "street": street,
        "city": city,
        "postcode": postcode,
        "email": f"{given}.{family}{rng.randint(1, 99)}@example.com",
    }


def _variant(rng: random.Random, person: dict) -> dict:
    record = dict(person)
    for name in rng.sample(["given_name", "family_name", "street", "city", "email"], k=rng.choice((1, 1, 2))):
        record[name] = _typo(rng, record[name])
    if rng.random() < 0.3:
        record["email"] = None
    if rng.random() < 0.15:
        record["street"] = None
    if rng.random() < 0.3:
        record["given_name"] = record["given_name"].title()
        record["family_name"] = record["family_name"].upper()
    return record


def build_people(seed: int = 7, people: int = 420) -> list[tuple]:
    """(record_key, entity_id, *FIELDS) rows with known duplicates and hard non-matches."""
    rng = random.Random(seed)
    entities: list[list[dict]] = []
    for _ in range(people):
        entities.append([_person(rng)])
    for entity in rng.sample(entities, 160):
        entity.extend(_variant(rng, entity[0]) for _ in range(rng.choice((1, 1, 2))))
    for entity in rng.sample(entities, 60):
        head = entity[0]
        home = (head["city"], head["postcode"], head["street"])
        sibling = _person(rng, head["family_name"], int(head["birth_date"][:4]), home)
        entities.append([sibling])
    rows = []
    for entity_id, entity in enumerate(entities):
        for record in entity:
            rows.append((f"r{len(rows):04d}", f"e{entity_id:04d}", *(record[f] for f in FIELDS)))
    rng.shuffle(rows)
    return rows
