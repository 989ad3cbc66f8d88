"""The processor: reserve a batch, flag it, assess it (domain/), store it, ack it; retries,
the dead letters and a crashing application isolated."""
