"""The REST API's shared plumbing, used by every app's API: pages (pagination), ids and times
in filters (filters), one error body for every failure (errors), who is asking and what they
may do (auth), the schema's additions (schema), and the root router (urls).

This package's own __init__ imports nothing: DRF loads auth's classes from its settings while
its views module loads, so importing the package must not import DRF's views."""
