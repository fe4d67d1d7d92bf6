"""``python -m kpgeo``: the ``kpgeo`` command line (same as the console script)."""

from kpgeo.cli import main

if __name__ == "__main__":
    main(prog_name="kpgeo")
