from dig.cli import main

raise SystemExit(main())
