"""`python -m app.cli`, the same as `pipeline-ops`."""

from app.cli import main

main()
