"""Counter-based seeding of random streams."""


def stream_seed(*keys: int) -> int:
    """A 63-bit seed from integer keys (base seed, rank, step, ...): counter-based seeding,
    so any position of a random stream can be regenerated without saving RNG states."""
    seed = 0
    for key in keys:
        seed = (seed * 1_000_003 + key) % (1 << 63)
    return seed
