"""Fixed word lists of the tiny world. Lists, never sets: their order feeds the RNG draws."""

from __future__ import annotations

from dataclasses import dataclass

# People of the world (facts, training stories). 64 names, so `people` can be at most 64.
NAMES: tuple[str, ...] = (
    "Mia", "Leo", "Ava", "Noah", "Emma", "Liam", "Zoe", "Omar", "Lily", "Ben",
    "Nora", "Sam", "Ella", "Max", "Ruby", "Finn", "Ivy", "Jack", "Lucy", "Owen",
    "Ada", "Eli", "Maya", "Hugo", "Rosa", "Theo", "Anna", "Carl", "Iris", "Dan",
    "Elsa", "Ezra", "Gina", "Ian", "Jade", "Kai", "Lena", "Milo", "Nina", "Otto",
    "Pia", "Ray", "Sara", "Tom", "Una", "Vic", "Wes", "Yara", "Alma", "Bo",
    "Cleo", "Dora", "Enzo", "Fay", "Gus", "Hana", "Ines", "Joel", "Kira", "Luca",
    "Mara", "Nils", "Opal", "Paul",
)  # fmt: skip

# Characters reserved for held-out theory-of-mind eval stories: they never occur in any
# training source, so an eval story shares no 8-gram with training text unless planted.
EVAL_STORY_NAMES: tuple[str, ...] = (
    "Quinn", "Rhea", "Silas", "Tess", "Uri", "Vera", "Wanda", "Xavi",
)  # fmt: skip


@dataclass(frozen=True)
class Attribute:
    """One kind of fact a person has, with how it is stated and asked about."""

    name: str
    values: tuple[str, ...]
    statements: tuple[str, ...]  # templates with {name} and {value}
    question: str  # template with {name}; the facts_mc phrasing
    answer: str  # full-sentence answer template for SFT
    rephrasings: tuple[str, ...] = ()  # other question templates, for training variety


ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute(
        "city",
        ("Paris", "London", "Rome", "Tokyo", "Cairo", "Lima", "Oslo", "Delhi", "Madrid", "Berlin"),
        ("{name} lives in {value}.", "{name} has a home in {value}.",
         "The city where {name} lives is {value}."),
        "Where does {name} live?",
        "{name} lives in {value}.",
        ("Which city does {name} live in?", "In which city is {name}'s home?"),
    ),
    Attribute(
        "pet",
        ("cat", "dog", "rabbit", "parrot", "hamster", "turtle", "goldfish", "horse", "mouse"),
        ("{name} has a pet {value}.", "{name}'s pet is a {value}.",
         "{name} takes care of a {value} every day."),
        "What pet does {name} have?",
        "{name} has a pet {value}.",
        ("Which animal does {name} keep as a pet?", "What kind of pet does {name} have?"),
    ),
    Attribute(
        "colour",
        ("red", "blue", "green", "yellow", "purple", "orange", "pink", "black", "white"),
        ("{name}'s favourite colour is {value}.", "{name} likes the colour {value} best.",
         "Of all colours, {name} loves {value} the most."),
        "What is {name}'s favourite colour?",
        "{name}'s favourite colour is {value}.",
        ("Which colour does {name} like best?", "What colour does {name} love the most?"),
    ),
    Attribute(
        "job",
        ("baker", "doctor", "teacher", "farmer", "pilot", "nurse", "painter", "singer", "cook"),
        ("{name} works as a {value}.", "{name} is a {value}.",
         "Every morning {name} goes to work as a {value}."),
        "What is {name}'s job?",
        "{name} works as a {value}.",
        ("What does {name} do for work?", "What work does {name} do?"),
    ),
    Attribute(
        "food",
        ("apples", "bread", "soup", "rice", "cheese", "pasta", "fish", "cake", "beans"),
        ("{name} likes to eat {value}.", "{name}'s favourite food is {value}.",
         "For dinner {name} always wants {value}."),
        "What food does {name} like?",
        "{name} likes to eat {value}.",
        ("What is {name}'s favourite food?", "Which food does {name} like to eat?"),
    ),
)  # fmt: skip

# Theory-of-mind story props.
OBJECTS: tuple[str, ...] = ("ball", "apple", "key", "book", "toy", "hat", "coin", "cup")
CONTAINERS: tuple[str, ...] = (
    "box", "basket", "drawer", "bag", "cupboard", "jar", "bucket", "chest",
)  # fmt: skip
ROOMS: tuple[str, ...] = ("kitchen", "garden", "bedroom", "classroom", "hall", "shop")

# Simple English sentences: subject verb (object) (place).
SUBJECTS: tuple[str, ...] = (
    "The cat", "The dog", "A small bird", "The old man", "The girl", "The boy", "My friend",
    "The teacher", "A farmer", "The baby", "Our neighbour", "The horse",
)  # fmt: skip
VERBS: tuple[tuple[str, str], ...] = (
    ("sees", "a red car"), ("eats", "some bread"), ("likes", "the warm sun"),
    ("finds", "a little stone"), ("reads", "a long book"), ("carries", "a heavy bag"),
    ("draws", "a big tree"), ("hears", "a loud song"), ("opens", "the blue door"),
    ("wants", "a cup of tea"), ("holds", "a yellow flower"), ("watches", "the white clouds"),
)  # fmt: skip
PLACES: tuple[str, ...] = (
    "in the park", "at home", "near the river", "in the morning", "after school",
    "on the hill", "by the window", "in the evening", "at the market", "under the tree",
)  # fmt: skip
INTRANSITIVE: tuple[str, ...] = (
    "sleeps", "runs", "sings", "smiles", "waits", "plays", "jumps", "laughs", "walks", "rests",
)  # fmt: skip
