"""The API's routes, one module per area: service (health), households, lists, runs, statistics."""
