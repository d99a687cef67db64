"""``python -m ganlab`` trains (see ganlab.train)."""

from ganlab.train import main

if __name__ == "__main__":
    main()
