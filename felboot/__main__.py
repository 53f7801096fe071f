"""`python -m felboot` runs the command-line tool."""

from felboot.cli import main

raise SystemExit(main())
