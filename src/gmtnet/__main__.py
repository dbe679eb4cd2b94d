"""``python -m gmtnet`` (and ``torchrun ... -m gmtnet train``): the gmtnet command line."""

from gmtnet.cli.app import main

if __name__ == "__main__":
    main()
