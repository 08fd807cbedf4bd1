"""``python -m restorecli`` is the ``restore`` command."""
from .launch import main

main()
