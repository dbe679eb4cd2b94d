"""The ``gmtnet`` command line."""
