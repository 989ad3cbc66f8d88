"""Rotating the PII key: where each key is still needed, and re-sealing stored values.

    status.py  which key sealed what (store, dead letters, broker), what the keyed
               hashes derive from, and whether an old key can be dropped now
    reseal.py  every stored value not under the current key sealed again, in batches

The procedure they serve is docs/deployment.md, "Rotating the PII key".
"""
