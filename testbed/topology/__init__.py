"""The topology file: model, strict loader, whole-graph validation, JSON Schema."""
