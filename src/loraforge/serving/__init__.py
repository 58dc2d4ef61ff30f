"""Production serving: one base model per process, many LoRA adapters on it, micro-batched.

``engine.py`` holds the model (base + named adapters + routed heads) and is driven from
one thread; ``batcher.py`` turns concurrent requests into padded-token-budget batches for
it; ``server.py`` is the HTTP face (``loraforge serve``).
"""
