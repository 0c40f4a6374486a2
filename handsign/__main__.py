from handsign.cli import main

raise SystemExit(main())
