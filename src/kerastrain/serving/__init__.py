"""`serve`: a run's model with its preprocessing inside, behind an HTTP API (app.py), the
request's rows checked and read (rows.py)."""
