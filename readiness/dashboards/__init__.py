"""The readiness dashboards: what answers add up to, for coordinators and officials. They sit on
top of the registry and the polls, and read both; nothing below imports them.

- figures: every number, computed by the database (aggregations, the arrival curve, stamps)
- charts: server-rendered SVG of the figures
- views and urls: the dashboard pages, their live partials, the map's points and the CSV
- api: the figures through the REST API (a poll's readiness, standing readiness)

They must not write anything: no answers, no deliveries, no registry changes."""
