"""Entry point for ``python -m provenance``."""

from provenance.entry import main

if __name__ == "__main__":
    main()
