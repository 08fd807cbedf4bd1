"""``python -m restorecli.train CONFIG [options]``: the same as ``restore train``.

For torchrun, which runs a module or a script::

    torchrun --nproc-per-node 2 -m restorecli.train recipes/denoise-nlmunet-s.toml
"""
import sys

from ..cli import app


def main() -> None:
    app(args=["train", *sys.argv[1:]], prog_name="restore")


if __name__ == "__main__":
    main()
