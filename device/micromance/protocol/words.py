"""The invite words: 256 short, common English words, one byte each (``invite``).

Chosen to be read aloud and typed without doubt: concrete things, lowercase ASCII, 3 to 7
letters; no homophones of other English words, no British/American spelling pairs, nothing
unkind. No two share their first three letters (three letters name a word), and any two differ
in at least two letters (one typo never makes another word, so it is always caught). The order
is the alphabet's and is part of the protocol: a word's position is its value.
"""

WORDS: tuple[str, ...] = (
    "acorn", "album", "amber", "anchor", "ankle", "apple", "apron", "arrow", "atlas", "attic",
    "autumn", "bacon", "banjo", "basket", "beaver", "belt", "bench", "bike", "bird", "blanket",
    "bloom", "bottle", "branch", "bridge", "brush", "bubble", "bucket", "button", "cabin",
    "camel", "candle", "cape", "castle", "chair", "cherry", "circle", "cliff", "cloud",
    "coffee", "comet", "cookie", "copper", "cotton", "crab", "crown", "cube", "daisy", "desk",
    "diamond", "dog", "donkey", "door", "dragon", "dream", "drum", "duck", "dune", "eagle",
    "earth", "echo", "egg", "elbow", "engine", "evening", "farm", "feather", "fence", "finger",
    "fire", "fish", "flag", "flute", "forest", "fox", "frog", "fruit", "garden", "gem", "ghost",
    "giant", "gift", "glass", "globe", "goat", "gold", "goose", "grape", "green", "guitar",
    "hammer", "harp", "hat", "hawk", "heart", "hero", "hill", "honey", "hook", "horn", "hotel",
    "house", "ink", "insect", "iron", "island", "jacket", "jazz", "jelly", "jet", "joke",
    "juice", "jungle", "kettle", "king", "kiwi", "ladder", "lake", "lamp", "lantern", "laptop",
    "lava", "lawn", "leaf", "lemon", "letter", "lily", "lime", "lion", "lunch", "magnet",
    "mango", "maple", "marble", "mask", "meadow", "melon", "mirror", "moon", "moss", "motor",
    "needle", "nest", "noodle", "north", "nut", "oak", "oasis", "ocean", "olive", "onion",
    "opera", "orange", "orbit", "otter", "oven", "owl", "palace", "panda", "paper", "parrot",
    "pasta", "peach", "pencil", "pepper", "piano", "pickle", "pillow", "pine", "pizza",
    "planet", "poem", "pond", "potato", "puddle", "pumpkin", "puzzle", "queen", "quilt",
    "rabbit", "radio", "raft", "rainbow", "reef", "ribbon", "rice", "riddle", "river", "robot",
    "rocket", "roof", "rope", "ruby", "ruler", "salad", "scarf", "school", "seal", "shadow",
    "shell", "ship", "silver", "skate", "ski", "sled", "smile", "snake", "snow", "sock", "sofa",
    "soup", "spider", "spoon", "stamp", "stone", "straw", "sugar", "summer", "sunset", "swan",
    "table", "taco", "teapot", "temple", "thunder", "ticket", "tiger", "toast", "tomato",
    "tooth", "torch", "towel", "train", "tulip", "tunnel", "turtle", "twig", "uncle", "valley",
    "vase", "village", "violin", "voyage", "waffle", "wagon", "walnut", "wand", "web", "wheat",
    "window", "wizard", "wolf", "worm", "yarn", "yellow", "zebra", "zoo",
)
