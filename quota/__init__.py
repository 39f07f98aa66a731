"""quota: plan limits, the durable SQL ledger and its Redis Lua mirror (see quota/gate.py)."""
