"""One module per op family; each maps spec ops to an emitter ``(builder, node, x) -> Value``."""
