"""The BODS 0.4 JSON Schema files, as data (README.md says where they come from)."""
