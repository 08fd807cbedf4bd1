"""``python -m restorecli`` is the ``restore`` command."""
from .cli import main

main()
