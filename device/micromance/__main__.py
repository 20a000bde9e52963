from micromance.cli import main

raise SystemExit(main())
