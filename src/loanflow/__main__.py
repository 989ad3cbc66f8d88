from loanflow.cli import main

raise SystemExit(main())
