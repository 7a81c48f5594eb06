"""Upstream generator checkpoint formats → (config, variables) of one of our generator families.

Each module here knows one upstream layout and the family it converts to; it reads files only through
`ganlatent_jax.port` (the safe torch reader and key-map helpers), which never imports a family. Interface (what
`generators.load` calls): NAME, sniff(path, checkpoint) -> bool, convert(path, checkpoint) -> (config, variables).
"""
