"""The `testbed` command: thin click verbs over the library, rendered with rich."""
