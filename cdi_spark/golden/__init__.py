"""Golden profiles: persistent customer ids, survivorship, Customer 360 and versioned publishing.

See ``docs/golden.md`` for the flow and the contract between the modules.
"""
